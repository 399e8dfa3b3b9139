"""Closing a pool of background work (runs, table maintenance) without leaving it to write after the process has let
go of its metadata database."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

DRAIN_SECONDS = 10.0
"""How long closing waits for the work in flight (a container's stop grants about as much before it kills)."""


def drain(
    executor: ThreadPoolExecutor, running: Iterable[Future[Any]], what: str, seconds: float = DRAIN_SECONDS
) -> bool:
    """Take no more work (what is queued is cancelled) and wait up to `seconds` for the work running to end; whether
    it all ended. Work still going after that is left as a crash leaves it, for the next start to settle."""
    executor.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + seconds
    for future in list(running):
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
        except Exception:  # cancelled, failed (the work logged and stored that) or still going
            if not future.done():
                log.warning("closed with a %s still going after %.0f s: the next start settles it", what, seconds)
                return False
    return True

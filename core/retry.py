"""Bounded retries with exponential backoff and full jitter, for calls that fail for a while and then recover
(an S3 endpoint restarting, the metadata database failing over).

The caller says which errors are worth another attempt; everything else propagates at once. A retry is bounded
both by a number of attempts and by a deadline, so a long outage still ends the call with the last error.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    """How to wait between attempts: `base * 2**n` capped at `cap`, a random part of it (full jitter)."""

    attempts: int = 4
    base_seconds: float = 0.5
    cap_seconds: float = 8.0
    deadline_seconds: float | None = None
    """No new attempt starts once this long has passed since the first one (None: attempts only)."""

    def delay(self, retry: int) -> float:
        """The wait before retry number `retry` (1 = the first retry)."""
        ceiling = min(self.cap_seconds, self.base_seconds * (2 ** (retry - 1)))
        return random.uniform(ceiling / 2, ceiling)


def retry_call(
    call: Callable[[], T],
    backoff: Backoff,
    *,
    retryable: Callable[[BaseException], bool],
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`call()`, again after a backoff while it raises a retryable error, until the attempts or the deadline run out;
    then the last error propagates unchanged."""
    started = time.monotonic()
    retry = 0
    while True:
        try:
            return call()
        except Exception as exc:
            retry += 1
            if not retryable(exc) or retry >= max(backoff.attempts, 1):
                raise
            wait = backoff.delay(retry)
            if backoff.deadline_seconds is not None and time.monotonic() - started + wait > backoff.deadline_seconds:
                raise
            log.warning("%s failed (%s); retry %d in %.1f s", what, exc.__class__.__name__, retry, wait)
            sleep(wait)

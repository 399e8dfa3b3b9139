"""Named crash points for the exactly-once tests.

`AUTOLOADER_CRASH_AT=<point>[:<n>]` kills the process with SIGKILL the n-th time (default 1st)
execution reaches `<point>`. Unset in production, where this costs one dict lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_hits: Counter[str] = Counter()


def crash_point(name: str) -> None:
    target = os.environ.get("AUTOLOADER_CRASH_AT")
    if not target:
        return
    point, _, nth = target.partition(":")
    if point != name:
        return
    _hits[name] += 1
    if _hits[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)

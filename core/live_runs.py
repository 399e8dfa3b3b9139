"""The runs this process is executing right now.

A run row says `running` with this process as owner both while the run executes and after its thread ended
without writing its end (the metadata database was down at that moment). Only this process can tell the two
apart at once, by asking this registry; other processes go by the heartbeat. One process serves one metadata
database, so a run id is enough to name a run.
"""

from __future__ import annotations

import threading


class LiveRuns:
    """A thread-safe set of run ids."""

    def __init__(self) -> None:
        self._ids: set[int] = set()
        self._lock = threading.Lock()

    def add(self, run_id: int) -> None:
        with self._lock:
            self._ids.add(run_id)

    def discard(self, run_id: int) -> None:
        with self._lock:
            self._ids.discard(run_id)

    def __contains__(self, run_id: object) -> bool:
        with self._lock:
            return run_id in self._ids


LIVE_RUNS = LiveRuns()

"""Live run news inside one process: a run's start, stored progress and end are announced per ingestion, so an open
page refreshes at once instead of at its next poll.

The news carries no data, only "ingestion N changed": a page that hears it reads through the read side as it always
does (so pages never disagree with the API). Runs executed by another replica announce nothing here; pages keep a
slower poll for those. Announcements come from run threads; a listener must hand the work to its own event loop
(`RunNews.on_loop`) and return quickly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Listener = Callable[[], None]


class RunNews:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[int, list[Listener]] = {}

    def subscribe(self, ingestion_id: int, listener: Listener) -> Callable[[], None]:
        """Call `listener` (from a run thread) whenever the ingestion's run changes; returns the unsubscribe."""
        with self._lock:
            self._listeners.setdefault(ingestion_id, []).append(listener)

        def unsubscribe() -> None:
            with self._lock:
                listeners = self._listeners.get(ingestion_id, [])
                if listener in listeners:
                    listeners.remove(listener)
                if not listeners:
                    self._listeners.pop(ingestion_id, None)

        return unsubscribe

    def announce(self, ingestion_id: int) -> None:
        with self._lock:
            listeners = list(self._listeners.get(ingestion_id, ()))
        for listener in listeners:
            try:
                listener()
            except Exception:  # one page's failure is neither the run's nor another page's
                log.exception("run news listener failed for ingestion %s", ingestion_id)

    def listeners(self, ingestion_id: int) -> int:
        with self._lock:
            return len(self._listeners.get(ingestion_id, ()))

    @staticmethod
    def on_loop(loop: asyncio.AbstractEventLoop, work: Callable[[], Awaitable[object]]) -> Listener:
        """A listener that runs `work` on `loop`, never twice at once: news that arrives while it runs is folded into
        one more run after it (a burst of progress costs at most two reloads)."""
        return _Coalesced(loop, work).listener


class _Coalesced:
    """`work` on one event loop, at most one at a time plus one pending. Its state is touched on the loop only."""

    def __init__(self, loop: asyncio.AbstractEventLoop, work: Callable[[], Awaitable[object]]) -> None:
        self.loop = loop
        self.work = work
        self.task: asyncio.Task[None] | None = None
        self.again = False

    def listener(self) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: the server is stopping, nobody is left to tell
            self.loop.call_soon_threadsafe(self._schedule)

    def _schedule(self) -> None:
        if self.task is not None and not self.task.done():
            self.again = True
            return
        self.task = self.loop.create_task(self._drain())

    async def _drain(self) -> None:
        while True:
            self.again = False
            try:
                await self.work()
            except Exception:
                log.exception("run news work failed")
            if not self.again:
                return

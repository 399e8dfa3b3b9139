"""app/live.py: run news per ingestion, handed to an event loop without overlapping work."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from app.live import RunNews


def test_news_reaches_only_the_ingestions_listeners_until_they_unsubscribe() -> None:
    news = RunNews()
    heard: list[str] = []
    stop_a = news.subscribe(1, lambda: heard.append("a"))
    news.subscribe(1, _fails)  # a failing listener is logged, the others still hear
    news.subscribe(2, lambda: heard.append("b"))
    news.announce(1)
    assert heard == ["a"]
    stop_a()
    news.announce(1)
    news.announce(2)
    assert heard == ["a", "b"]
    assert news.listeners(1) == 1 and news.listeners(3) == 0


def _fails() -> None:
    raise RuntimeError("a page that broke")


async def test_a_burst_of_news_costs_at_most_two_runs_of_the_work() -> None:
    loop = asyncio.get_running_loop()
    started: list[float] = []
    release = asyncio.Event()

    async def work() -> None:
        started.append(loop.time())
        await release.wait()

    listener = RunNews.on_loop(loop, work)
    listener()
    await _until(lambda: len(started) == 1)
    burst = threading.Thread(target=lambda: [listener() for _ in range(50)])  # from a run thread, as runs do
    burst.start()
    burst.join()
    await asyncio.sleep(0.05)
    assert len(started) == 1, "never two at once"
    release.set()
    await _until(lambda: len(started) == 2)
    await asyncio.sleep(0.1)
    assert len(started) == 2, "one more run for all the news that came while the first ran"
    listener()
    await _until(lambda: len(started) == 3)


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not reached in 2 s")

"""Every simulated app is built on NiceGUI's one process-wide app: what one test's app adds must not pile up under
the next one's (a CI worker once started its ~95th app ~1000 frames deep and hit the recursion limit)."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from nicegui.testing.general_fixtures import get_path_to_main_file
from nicegui.testing.user_simulation import user_simulation

from tests.ui.conftest import shared_app_lifespan_kept


def _stack_depth() -> int:
    frame, depth = sys._getframe(1), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


async def test_each_simulated_app_starts_at_the_same_stack_depth(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.bootstrap import Container

    depths: list[int] = []
    start = Container.start

    def start_recording_its_depth(self: Any) -> None:
        depths.append(_stack_depth())
        start(self)

    monkeypatch.setattr(Container, "start", start_recording_its_depth)
    for _ in range(3):
        with shared_app_lifespan_kept():  # what the autouse fixture does between two tests
            async with user_simulation(main_file=get_path_to_main_file(request)):
                pass
    assert len(depths) == 3 and len(set(depths)) == 1, depths

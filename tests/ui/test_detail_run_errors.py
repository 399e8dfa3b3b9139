"""The detail page's last-run banner names a bad file once (its message starts with the path already)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nicegui import ui
from nicegui.testing import User

from tests.helpers import spec


async def test_the_last_run_banner_names_a_bad_file_once(user: User, services_of_app: Any, tmp_path: Path) -> None:
    landing = tmp_path / "in"
    landing.mkdir()
    (landing / "good.json").write_text('{"id": 1}\n')
    bad = landing / "noise.json"
    bad.write_bytes(b"\x00\x01 not json")
    ingestion = services_of_app.ingestions.create(spec(str(landing), name="noisy"), activate=True)
    services_of_app.runs.run_now(str(ingestion.id))
    await user.open(f"/ingestions/{ingestion.id}")
    await user.should_see("Last run #1 partial", retries=50)
    texts = [label.text for label in user.find(ui.label).elements if isinstance(label, ui.label)]
    lines = [text for text in texts if "is not valid JSON" in text]
    assert lines and all(text.count(str(bad)) == 1 for text in lines), lines

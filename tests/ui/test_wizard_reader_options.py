"""The Format step's "Advanced reader options" and the Source step's "Partition folders", through the wizard."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from nicegui.testing import User

from app.pages.wizard.draft import SpecDraft
from app.pages.wizard.validation import validate_step
from core.config import IngestionSpec
from core.domain import Ingestion
from tests.helpers import spec
from tests.ui.conftest import ORDERS
from tests.ui.test_wizard import _step_is

CSV_OPTIONS = ("escape", "comment", "null_value", "nan_value")
JSON_OPTIONS = ("allow_single_quotes", "primitives_as_string")
SHARED_OPTIONS = ("date_format", "timestamp_format", "encoding", "mode")


def _element(user: User, marker: str) -> Any:
    return next(iter(user.find(marker=marker).elements))


def _csv_folder(root: Path) -> Path:
    folder = root / "sales"
    folder.mkdir()
    (folder / "sales-1.csv").write_bytes("id,city,amount\n1,Köln,2.5\n2,--,--\n3,Bonn,4\n".encode("latin-1"))
    return folder


async def _to_format_step(user: User, path: Path) -> None:
    await user.open("/ingestions/new")
    user.find(marker="name").type("sales")
    user.find(marker="source.path").type(str(path))
    user.find(marker="next").click()
    await _step_is(user, "Format")


async def _saved(services: Any) -> Ingestion:
    for _ in range(100):
        found = services.store.list_ingestions()
        if found:
            return found[0]  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError("the console did not save the ingestion")


async def test_csv_null_value_and_encoding_are_saved(user: User, services_of_app: Any, tmp_path: Path) -> None:
    await _to_format_step(user, _csv_folder(tmp_path))
    _element(user, "format.type").set_value("csv")
    await user.should_see("Advanced reader options")
    expansion = _element(user, "reader-options")
    assert expansion.props["caption"] == "Spark / Auto Loader defaults"
    user.find(marker="format.options.null_value").type("--").trigger("blur")
    user.find(marker="format.options.encoding").clear().type("latin-1").trigger("blur")
    assert expansion.props["caption"] == "Changed: null value, encoding"
    user.find(marker="refresh-schema").click()  # the preview reads the files with the options
    await user.should_see("• amount (double)", retries=50)  # '--' is NULL, not text
    await user.should_see("• city (string)")
    user.find(marker="next").click()
    await _step_is(user, "Destination")
    user.find(marker="destination.table").type("sales")
    await user.should_see("null value '--', encoding 'latin-1'")  # the summary lists what is not the default
    user.find(marker="save-draft").click()
    options = (await _saved(services_of_app)).spec.format.options
    assert (options.null_value, options.encoding) == ("--", "latin-1")
    assert (options.nan_value, options.mode, options.date_format) == ("NaN", "permissive", None)  # untouched


async def test_an_invalid_date_format_is_shown_under_the_field_and_blocks_next(user: User) -> None:
    await _to_format_step(user, ORDERS)
    expansion = _element(user, "reader-options")
    assert expansion.value is False  # collapsed by default
    user.find(marker="format.options.date_format").type("yyyy-qq-dd")
    user.find(marker="next").click()
    await user.should_see(marker="error-format.options.date_format")
    error = _element(user, "error-format.options.date_format")
    assert "unsupported date/time pattern 'yyyy-qq-dd'" in error.text
    assert "Spark pattern letters" in error.text
    assert expansion.value is True  # opened to show the error
    await _step_is(user, "Format")
    user.find(marker="format.options.date_format").clear().type("dd/MM/yyyy")
    await user.should_not_see(marker="error-format.options.date_format")
    user.find(marker="next").click()
    await _step_is(user, "Destination")


async def test_leaving_a_field_checks_it(user: User) -> None:
    await _to_format_step(user, ORDERS)
    user.find(marker="format.options.encoding").clear().type("klingon").trigger("blur")
    await user.should_see("unknown text encoding 'klingon'")
    assert _element(user, "error-format.options.encoding").visible


async def test_only_the_chosen_formats_options_are_shown(user: User) -> None:
    await _to_format_step(user, ORDERS)  # JSON
    for name in (*JSON_OPTIONS, *SHARED_OPTIONS):
        await user.should_see(marker=f"format.options.{name}")
    for name in CSV_OPTIONS:
        await user.should_not_see(marker=f"format.options.{name}")
    _element(user, "format.type").set_value("csv")
    for name in (*CSV_OPTIONS, *SHARED_OPTIONS):
        await user.should_see(marker=f"format.options.{name}")
    for name in JSON_OPTIONS:
        await user.should_not_see(marker=f"format.options.{name}")
    _element(user, "format.type").set_value("parquet")
    await user.should_not_see(marker="reader-options")
    await user.should_not_see("Advanced reader options")


def test_a_character_clash_is_shown_under_the_option_that_causes_it() -> None:
    """A check over several options (the spec's model validator) is placed under the option it names."""
    draft = SpecDraft(spec(str(ORDERS), format={"type": "csv"}))
    draft.set("format.options.escape", ",")
    problems = validate_step(draft, "Format")
    assert problems == {"format.options.escape": "escape and delimiter cannot be the same character (',')"}


async def test_partition_folders_choice_is_saved(user: User, services_of_app: Any) -> None:
    await user.open("/ingestions/new")
    user.find(marker="name").type("orders")
    user.find(marker="source.path").type(str(ORDERS))
    choice = _element(user, "partition-folders")
    assert choice.value == "all"  # Auto Loader's default: every key=value folder
    await user.should_not_see(marker="source.partition_columns")
    choice.set_value("only")
    await user.should_see(marker="source.partition_columns")
    user.find(marker="source.partition_columns").type("year, month")
    user.find(marker="next").click()
    await _step_is(user, "Format")
    user.find(marker="next").click()
    await _step_is(user, "Destination")
    user.find(marker="destination.table").type("orders")
    await user.should_see("Partition folders:")
    await user.should_see("only year, month")
    user.find(marker="save-draft").click()
    saved = await _saved(services_of_app)
    assert saved.spec.source.partition_columns == ["year", "month"]


async def test_partition_folders_off_keeps_the_list_for_only(user: User, services_of_app: Any) -> None:
    stored = spec(str(ORDERS), table="orders", name="orders", source={"partition_columns": ["year"]})
    ingestion = services_of_app.ingestions.create(stored, activate=False)
    await user.open(f"/ingestions/{ingestion.id}/edit")
    choice = _element(user, "partition-folders")
    assert choice.value == "only"
    assert _element(user, "source.partition_columns").value == "year"
    choice.set_value("all")
    await user.should_not_see(marker="source.partition_columns")
    choice.set_value("only")
    await user.should_see(marker="source.partition_columns")  # the list typed before comes back
    assert _element(user, "source.partition_columns").value == "year"
    choice.set_value("off")
    user.find(marker="save-draft").click()
    for _ in range(100):
        saved: IngestionSpec = services_of_app.store.get_ingestion(ingestion.id).spec
        if saved.source.partition_columns == []:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"saved {saved.source.partition_columns!r}, not [] (off)")

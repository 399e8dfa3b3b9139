"""The Format step's "Column types" editor (`format.schema.hints`), through the wizard with NiceGUI's `user`."""

from __future__ import annotations

import asyncio
from typing import Any

from nicegui.testing import User

from app.pages.wizard.draft import SpecDraft
from app.pages.wizard.type_hints import HintRow
from app.pages.wizard.validation import validate_step
from core.domain import Ingestion
from tests.helpers import spec
from tests.ui.conftest import ORDERS
from tests.ui.test_wizard import _step_is

STORED_HINTS = {"amount": "decimal(12,2)", "customer": "string", "user.geo.lat": "double", "tags": "array<string>"}


def _element(user: User, marker: str) -> Any:
    return next(iter(user.find(marker=marker).elements))


async def _to_format_step(user: User) -> None:
    await user.open("/ingestions/new")
    user.find(marker="name").type("orders")
    user.find(marker="source.path").type(str(ORDERS))
    user.find(marker="next").click()
    await _step_is(user, "Format")


async def _activated(services: Any) -> list[Ingestion]:
    """The stored ingestions once one is active (it is stored, then activated)."""
    for _ in range(100):
        found: list[Ingestion] = services.store.list_ingestions()
        if any(i.status.value == "active" for i in found):
            return found
        await asyncio.sleep(0.05)
    return services.store.list_ingestions()


async def test_a_column_type_is_shown_in_the_preview_and_stored_on_create(user: User, services_of_app: Any) -> None:
    await _to_format_step(user)
    await user.should_see("• amount (double)", retries=50)  # inferred from the files
    user.find(marker="add-type-hint").click()
    user.find(marker="type-hint-column-0").type("amount")
    _element(user, "type-hint-type-0").set_value("decimal")
    _element(user, "type-hint-precision-0").set_value(12)
    assert "amount decimal(12,2)" in _element(user, "type-hints").props["caption"]
    user.find(marker="refresh-schema").click()
    await user.should_see("• amount (decimal(12,2))", retries=50)
    user.find(marker="next").click()
    await _step_is(user, "Destination")
    user.find(marker="destination.table").type("orders")
    user.find(marker="next").click()
    await _step_is(user, "Schedule")
    user.find(marker="next").click()  # Test & Preview
    await user.should_see(marker="schema-table", retries=50)
    types = {row["name"]: row["type"] for row in _element(user, "schema-table").rows}
    assert types["amount"] == "decimal(12,2)"
    assert types["order_id"] == "bigint"  # the columns without a hint keep their inferred type
    user.find(marker="create").click()
    created = await _activated(services_of_app)
    assert [(i.name, i.status.value) for i in created] == [("orders", "active")]
    assert created[0].spec.format.schema_.hints == {"amount": "decimal(12,2)"}


async def test_an_invalid_type_is_named_at_its_row_and_blocks_next_and_saving(user: User, services_of_app: Any) -> None:
    await _to_format_step(user)
    user.find(marker="add-type-hint").click()
    user.find(marker="type-hint-column-0").type("amount")
    _element(user, "type-hint-type-0").set_value("decimal")
    _element(user, "type-hint-precision-0").set_value(50)
    error = _element(user, "type-hint-error-0")
    assert error.visible  # checked as it changes, before Next
    assert "invalid decimal type 'decimal(50,2)' (hint for column 'amount')" in error.text
    assert "Use decimal(p,s) with 1 <= p <= 38" in error.text
    user.find(marker="add-type-hint").click()
    user.find(marker="type-hint-column-1").type("items")
    _element(user, "type-hint-type-1").set_value("other")
    user.find(marker="type-hint-other-1").type("integr")
    assert "unknown column type 'integr' (hint for column 'items')" in _element(user, "type-hint-error-1").text
    user.find(marker="next").click()
    await user.should_see("hint for column 'amount'")
    await user.should_see("hint for column 'items'")  # every bad row is named, not only the first
    await _step_is(user, "Format")
    user.find(marker="save-draft").click()
    await user.should_see("Fix the highlighted fields on the Format step first.")
    assert services_of_app.store.list_ingestions() == []
    _element(user, "type-hint-precision-0").set_value(12)
    user.find(marker="type-hint-other-1").clear().type("integer")
    await user.should_not_see(marker="type-hint-error-0")
    await user.should_not_see(marker="type-hint-error-1")
    user.find(marker="next").click()
    await _step_is(user, "Destination")


async def test_edit_mode_shows_the_saved_hints_and_keeps_them(user: User, services_of_app: Any) -> None:
    stored = spec(str(ORDERS), table="orders", name="orders", format={"schema": {"hints": STORED_HINTS}})
    ingestion = services_of_app.ingestions.create(stored, activate=False)
    await user.open(f"/ingestions/{ingestion.id}/edit")
    assert _element(user, "type-hints").value is True  # open: the step shows what is set
    shown = [
        (_element(user, f"type-hint-column-{i}").value, _element(user, f"type-hint-type-{i}").value) for i in range(4)
    ]
    assert shown == [("amount", "decimal"), ("customer", "string"), ("user.geo.lat", "double"), ("tags", "other")]
    assert (_element(user, "type-hint-precision-0").value, _element(user, "type-hint-scale-0").value) == (12, 2)
    assert _element(user, "type-hint-other-3").value == "array<string>"
    await user.should_see(marker="type-hint-other-3")
    await user.should_not_see(marker="type-hint-other-0")  # a decimal's row shows precision and scale instead
    user.find(marker="remove-type-hint-1").click()  # customer
    user.find(marker="save-draft").click()
    for _ in range(100):
        hints = services_of_app.store.get_ingestion(ingestion.id).spec.format.schema_.hints
        if "customer" not in hints:
            break
        await asyncio.sleep(0.05)
    assert hints == {"amount": "decimal(12,2)", "user.geo.lat": "double", "tags": "array<string>"}


def test_stored_hints_keep_their_spelling() -> None:
    """A row shows a stored hint so that writing it back gives the same text (the draft keeps what it does not
    change): spellings the list does not use are shown as Other."""
    for text in ("decimal(12,2)", "bigint", "BIGINT", "decimal(10, 2)", "decimal", "long", "struct<a:int>"):
        assert HintRow.of("c", text).type_text() == text


def test_the_format_step_names_every_bad_hint() -> None:
    """The spec's check stops at its first bad hint; the step's validation names each, at its row's path."""
    draft = SpecDraft(spec(str(ORDERS)))
    draft.set("format.schema.hints", {"a": "bigint", "b": "decimal(0,0)", "c.d": "nope"})
    problems = validate_step(draft, "Format")
    assert set(problems) == {"format.schema.hints.b", "format.schema.hints.c.d"}
    assert "hint for column 'c.d'" in problems["format.schema.hints.c.d"]

"""Incremental listing in the console: the switch and its full-listing interval stay editable on an active
ingestion (the rest of the source is locked once active), and the interval shows only with the switch on."""

from __future__ import annotations

from typing import Any

from nicegui.testing import User

from tests.helpers import spec
from tests.ui.test_wizard_roundtrip import ORDERS, _console_updated


async def test_incremental_listing_is_switched_on_for_an_active_ingestion(user: User, services_of_app: Any) -> None:
    ingestion = services_of_app.ingestions.create(spec(str(ORDERS), table="orders", name="orders"), activate=True)
    await user.open(f"/ingestions/{ingestion.id}/edit")
    await user.should_see(marker="source.incremental_listing")
    await user.should_not_see(marker="source.full_listing_interval_hours")
    next(iter(user.find(marker="source.incremental_listing").elements)).set_value(True)
    await user.should_see(marker="source.full_listing_interval_hours")
    user.find(marker="source.full_listing_interval_hours").clear().type("6")
    user.find(marker="save-draft").click()
    await _console_updated(services_of_app, ingestion.id)
    saved = services_of_app.store.get_ingestion(ingestion.id)
    assert saved.status.value == "active"
    assert saved.spec.source.incremental_listing and saved.spec.source.full_listing_interval_hours == 6

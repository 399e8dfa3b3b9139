"""The wizard edits a copy of the stored spec: saving unchanged stores the same spec, a change touches one field.

The spec under test is built by walking `IngestionSpec` recursively and giving every field a non-default value,
so a field added to the contract later is covered without editing this file (a type the walker does not know
fails loudly in `_value_for`).
"""

from __future__ import annotations

import asyncio
import types
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
from nicegui.testing import User
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from app.pages.wizard.draft import SpecDraft
from core.access import SYSTEM
from core.config import Credentials, IngestionSpec
from tests.helpers import spec
from tests.server_process import ADMIN_EMAIL
from tests.ui.conftest import ORDERS

CONSTRAINED: dict[str, Any] = {
    "source.type": "s3",
    "source.path": "s3://landing/orders/",
    "source.endpoint_url": "http://127.0.0.1:9",
    "format.type": "csv",
    "format.options.delimiter": ";",
    "format.options.quote": "'",
    "format.options.escape": "\\",
    "format.options.comment": "#",
    "format.options.date_format": "dd/MM/yyyy",
    "format.options.timestamp_format": "dd/MM/yyyy HH:mm:ss",
    "format.options.encoding": "latin-1",
    "format.schema.hints": {"id": "bigint", "user.geo.lat": "double"},
    "format.schema.schema_json": [{"name": "id", "type": "bigint", "nullable": True}],
    "schedule.time": "03:15",
    "schedule.weekday": "tue",
    "schedule.cron_expression": "5 4 * * *",
    "schedule.timezone": "Europe/Berlin",
    "schedule.backfill.mode": "since",
    "schedule.backfill.since": datetime(2024, 5, 1, 13, 45, 30, tzinfo=UTC),
    "quality.alert_recipients": ["ops@example.com", "data@example.com"],
    "quality.webhook_url": "http://127.0.0.1:9/hook",
}
"""Fields whose validators need a particular shape; `backfill.mode` is 'since' so activating lists nothing."""

OTHER_SOURCES = {"source.host_key_fingerprint"}
"""Fields another source type takes (SFTP's pinned host key), refused on the S3 source under test: left default."""
PRODUCT_SET = {"destination.location"}
"""Fields only the product sets (moving between engines), refused when a spec sent to it sets them: left default."""


def _optional_removed(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return _plain(args[0]) if len(args) == 1 else Union[tuple(args)]  # noqa: UP007
    return _plain(annotation)


def _plain(annotation: Any) -> Any:
    """The type under `Annotated[...]` (the spec's bounded strings), inside lists and dicts too."""
    if get_origin(annotation) is Annotated:
        return _plain(get_args(annotation)[0])
    if get_origin(annotation) in (list, dict):
        return get_origin(annotation)[tuple(_plain(arg) for arg in get_args(annotation))]
    return annotation


def _bound(info: FieldInfo, name: str) -> Any:
    return next((getattr(m, name) for m in info.metadata if getattr(m, name, None) is not None), None)


def _value_for(path: str, info: FieldInfo, overrides: dict[str, Any]) -> Any:
    if path in overrides:
        return overrides[path]
    annotation = _optional_removed(info.annotation)
    default = info.get_default(call_default_factory=True)
    leaf = path.rsplit(".", 1)[-1]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _non_default(annotation, overrides, f"{path}.")
    if get_origin(annotation) is Literal:
        return next(choice for choice in get_args(annotation) if choice != default)
    if annotation is bool:
        return not default
    if annotation is int:
        base = default if isinstance(default, int) else (_bound(info, "ge") or 0)
        return base + 1
    if annotation is float:
        return default / 2 if default else 0.5
    if annotation is str:
        return f"{leaf}_x"
    if get_origin(annotation) is list and get_args(annotation) == (str,):
        return [f"{leaf}_a", f"{leaf}_b"]
    if get_origin(annotation) is dict and get_args(annotation) == (str, str):
        return {f"{leaf}_k": f"{leaf}_v"}
    if annotation is datetime:
        return datetime(2024, 5, 1, 13, 45, tzinfo=UTC)
    raise TypeError(f"{path}: no non-default value for {annotation!r}; add one to CONSTRAINED")


def _non_default(model: type[BaseModel], overrides: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A body for `model` in which every field differs from its default."""
    body: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        if f"{prefix}{key}" in OTHER_SOURCES | PRODUCT_SET:
            continue
        value = _value_for(f"{prefix}{key}", info, overrides)
        default = info.get_default(call_default_factory=True)
        assert default is PydanticUndefined or value != default, f"{prefix}{key} would keep its default"
        body[key] = value
    return body


def full_spec(cluster_id: int, name: str = "everything") -> IngestionSpec:
    return IngestionSpec.model_validate(
        _non_default(IngestionSpec, CONSTRAINED | {"cluster_id": cluster_id, "name": name})
    )


def _leaves(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        found: dict[str, Any] = {}
        for key, value in data.items():
            found |= _leaves(value, f"{prefix}{key}.")
        return found
    return {prefix.rstrip("."): data}


def _changed(before: IngestionSpec, after: IngestionSpec) -> dict[str, tuple[Any, Any]]:
    old, new = _leaves(before.model_dump(by_alias=True)), _leaves(after.model_dump(by_alias=True))
    return {path: (old.get(path), new.get(path)) for path in old.keys() | new.keys() if old.get(path) != new.get(path)}


def _cluster(services: Any) -> int:
    from app.db.models import ClusterCreate
    from app.local_spark import free_port

    cluster = services.clusters.create(
        ClusterCreate(name="spark-idle", connect_url=f"sc://127.0.0.1:{free_port()}", price_per_hour=1.5)
    )
    return int(cluster.id)


async def _save_unchanged_in_console(user: User, services: Any, ingestion_id: int) -> None:
    """Open the edit page, press Save, and wait until the console's update is recorded."""
    await user.open(f"/ingestions/{ingestion_id}/edit")
    await user.should_see(marker="save-draft")
    user.find(marker="save-draft").click()
    await _console_updated(services, ingestion_id)


async def _console_updated(services: Any, ingestion_id: int) -> None:
    for _ in range(100):
        entries = services.views.audit(SYSTEM)
        if any(e.action == "update" and e.actor == ADMIN_EMAIL and e.object_id == str(ingestion_id) for e in entries):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the console did not save the ingestion (see the notification for the service's answer)")


def test_the_full_spec_sets_every_field() -> None:
    built = full_spec(cluster_id=7)
    assert built.format.schema_.ignored_columns and built.quality.webhook_url
    assert built.source.credentials.secret_access_key == "secret_access_key_x"
    assert SpecDraft(built).spec() == built


def test_a_chosen_frequency_starts_with_the_fields_it_needs() -> None:
    draft = SpecDraft(spec(str(ORDERS)))
    assert draft.fill_schedule() == []  # manual: nothing to fill
    draft.set("schedule.mode", "scheduled")
    assert draft.fill_schedule() == ["schedule.frequency", "schedule.time"]
    draft.set("schedule.frequency", "weekly")
    assert draft.fill_schedule() == ["schedule.weekday"]
    draft.set("schedule.frequency", "hourly")
    assert draft.fill_schedule() == ["schedule.minute"]
    schedule = draft.spec().schedule
    assert (schedule.frequency, schedule.minute, schedule.time, schedule.weekday) == ("hourly", 0, "02:00", "mon")


@pytest.mark.parametrize("activate", [False, True], ids=["draft", "active"])
async def test_saving_unchanged_stores_the_same_spec(user: User, services_of_app: Any, activate: bool) -> None:
    stored = full_spec(_cluster(services_of_app))
    ingestion = services_of_app.ingestions.create(stored, activate=activate)
    await _save_unchanged_in_console(user, services_of_app, ingestion.id)
    saved = services_of_app.store.get_ingestion(ingestion.id).spec
    lost = _changed(stored, saved)
    assert not lost, "changed by the round trip:\n" + "\n".join(
        f"{k}: {v[0]!r} -> {v[1]!r}" for k, v in sorted(lost.items())
    )
    assert saved.model_dump() == stored.model_dump()


@pytest.mark.parametrize(
    ("marker", "typed", "path", "expected"),
    [
        ("name", "renamed", "name", "renamed"),
        ("source.file_pattern", "*.csv", "source.file_pattern", "*.csv"),
        ("destination.table", "other_table", "destination.table", "other_table"),
        ("format.options.null_value", "NA", "format.options.null_value", "NA"),
        ("format.options.encoding", "windows-1252", "format.options.encoding", "windows-1252"),
        ("format.options.date_format", "yyyy-MM-dd", "format.options.date_format", "yyyy-MM-dd"),
        ("source.partition_columns", "year, month", "source.partition_columns", ["year", "month"]),
        ("quality.alert_recipients", "a@example.com, b@example.com", "quality.alert_recipients", None),
    ],
)
async def test_changing_one_field_changes_only_that_field(
    user: User, services_of_app: Any, marker: str, typed: str, path: str, expected: Any
) -> None:
    stored = full_spec(_cluster(services_of_app))
    ingestion = services_of_app.ingestions.create(stored, activate=False)
    await user.open(f"/ingestions/{ingestion.id}/edit")
    await user.should_see(marker=marker)
    user.find(marker=marker).clear().type(typed)
    user.find(marker="save-draft").click()
    await _console_updated(services_of_app, ingestion.id)
    saved = services_of_app.store.get_ingestion(ingestion.id).spec
    changed = _changed(stored, saved)
    assert set(changed) == {path}
    if path == "quality.alert_recipients":
        assert saved.quality.alert_recipients == ["a@example.com", "b@example.com"]
    else:
        assert changed[path][1] == expected


async def test_active_ingestion_with_ignored_columns_saves_from_the_console(user: User, services_of_app: Any) -> None:
    """A schema review that chose 'ignore' stored format.schema.ignored_columns; format is locked once active."""
    reviewed = spec(str(ORDERS), table="orders", name="orders", format={"schema": {"ignored_columns": ["coupon"]}})
    ingestion = services_of_app.ingestions.create(reviewed, activate=True)
    await _save_unchanged_in_console(user, services_of_app, ingestion.id)
    saved = services_of_app.store.get_ingestion(ingestion.id)
    assert saved.status.value == "active"
    assert saved.spec.format.schema_.ignored_columns == ["coupon"]
    assert saved.spec.model_dump() == reviewed.model_dump()


def _s3_with_keys() -> IngestionSpec:
    keys = {"type": "access_key", "access_key_id": "AKIAKEY", "secret_access_key": "s3cret", "session_token": "tok"}
    return spec("s3://landing/orders/", table="orders", name="orders", source={"type": "s3", "credentials": keys})


@pytest.mark.parametrize("back_to_keys", [True, False], ids=["ambient-then-keys", "ambient"])
async def test_access_keys_are_stored_only_while_chosen(user: User, services_of_app: Any, back_to_keys: bool) -> None:
    stored = _s3_with_keys()
    ingestion = services_of_app.ingestions.create(stored, activate=False)
    await user.open(f"/ingestions/{ingestion.id}/edit")
    await user.should_see(marker="source.credentials.type")
    secret = next(iter(user.find(marker="source.credentials.secret_access_key").elements))
    assert secret.value == ""  # the stored secret never goes to the browser
    auth = next(iter(user.find(marker="source.credentials.type").elements))
    auth.set_value("ambient")
    if back_to_keys:
        auth.set_value("access_key")
        key_id = next(iter(user.find(marker="source.credentials.access_key_id").elements))
        assert key_id.value == "AKIAKEY"
    user.find(marker="save-draft").click()
    await _console_updated(services_of_app, ingestion.id)
    credentials = services_of_app.store.get_ingestion(ingestion.id).spec.source.credentials
    if back_to_keys:
        assert credentials == stored.source.credentials
    else:
        assert credentials.model_dump() == Credentials().model_dump()

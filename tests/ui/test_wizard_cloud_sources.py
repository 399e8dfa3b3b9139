"""The wizard's Azure Blob, Google Cloud and SFTP cards against real servers on loopback (Azurite,
fake-gcs-server, an asyncssh SFTP server): fill the card, Test Connection, the preview's rows, Create; one run."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nicegui import ui
from nicegui.testing import User

from core.access import SYSTEM
from core.domain import RunStatus
from tests.helpers import read_table, spec, write_json_files
from tests.services import SFTP_USER, Azurite, FakeGCS, SFTPServer

FILES, RECORDS = 2, 20


def _element(user: User, marker: str) -> Any:
    return next(iter(user.find(marker=marker).elements))


def _azure(user: User, server: Azurite, tmp_path: Path) -> None:
    container = server.new_container("ui")
    for path in write_json_files(tmp_path / "files", FILES, RECORDS):
        server.put(container, f"in/{path.name}", path.read_bytes())
    user.find(marker="source-azure_blob").click()
    user.find(marker="source.path").type(server.path(container, "in/"))
    user.find(marker="source.endpoint_url").type(server.endpoint_url)
    _element(user, "source.credentials.type").set_value("account_key")
    user.find(marker="source.credentials.account_key").type(server.key)


def _gcs(user: User, server: FakeGCS, tmp_path: Path) -> None:
    bucket = server.new_bucket("ui")
    for path in write_json_files(tmp_path / "files", FILES, RECORDS):
        server.put(bucket, f"in/{path.name}", path.read_bytes())
    user.find(marker="source-gcs").click()
    user.find(marker="source.path").type(f"gs://{bucket}/in/")
    user.find(marker="source.endpoint_url").type(server.endpoint_url)
    _element(user, "source.credentials.type").set_value("anonymous")


def _sftp(user: User, server: SFTPServer, tmp_path: Path) -> None:
    folder = f"ui-{uuid.uuid4().hex[:8]}"
    write_json_files(server.root / folder, FILES, RECORDS)
    user.find(marker="source-sftp").click()
    user.find(marker="source.path").type(server.path(folder))
    _element(user, "source.credentials.type").set_value("private_key")
    user.find(marker="source.credentials.username").type(SFTP_USER)
    user.find(marker="source.credentials.private_key").type(server.client_key)


FILL: dict[str, tuple[str, Callable[[User, Any, Path], None]]] = {
    "azure": ("azurite", _azure),
    "gcs": ("fake_gcs", _gcs),
    "sftp": ("sftp_server", _sftp),
}


async def _step_is(user: User, step: str) -> None:
    stepper = next(iter(user.find(ui.stepper).elements))
    for _ in range(50):
        if stepper.value == step:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"wizard is on {stepper.value}, not {step}")


async def _created(services: Any) -> Any:
    for _ in range(100):
        if created := services.store.list_ingestions():
            return created[0]
        await asyncio.sleep(0.1)
    raise AssertionError("the console did not create the ingestion")


@pytest.mark.parametrize("backend", list(FILL))
async def test_a_cloud_card_tests_previews_and_creates(
    user: User,
    services_of_app: Any,
    console_data_dir: Path,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    backend: str,
) -> None:
    fixture, fill = FILL[backend]
    server = request.getfixturevalue(fixture)
    await user.open("/ingestions/new")
    user.find(marker="name").type(f"{backend}_orders")
    fill(user, server, tmp_path)
    user.find(marker="test-connection").click()
    await user.should_see(f"Connection successful — {FILES} files", retries=100)
    if backend == "sftp":
        await user.should_see(f"Host key {server.fingerprint} pinned")
        assert _element(user, "source.host_key_fingerprint").value == server.fingerprint
    user.find(marker="next").click()
    await user.should_see("• id (bigint)", retries=100)
    user.find(marker="next").click()
    await _step_is(user, "Destination")
    user.find(marker="destination.table").type(f"{backend}_orders")
    user.find(marker="next").click()
    await _step_is(user, "Schedule")
    user.find(marker="next").click()
    await user.should_see("Preview & Test Ingestion", retries=100)
    await user.should_see(marker="sample-rows")
    await user.should_see("user-0")
    user.find(marker="create").click()
    created = await _created(services_of_app)
    source = created.spec.source
    assert (source.type, created.status.value) == ({"azure": "azure_blob"}.get(backend, backend), "active")
    if backend == "sftp":
        assert source.credentials.private_key == server.client_key
        assert source.host_key_fingerprint == server.fingerprint  # pinned into the saved config
    if backend == "azure":
        assert source.credentials.account_key == server.key and source.endpoint_url == server.endpoint_url
    if backend == "gcs":
        outcome = services_of_app.runs.run_now(str(created.id))
        assert outcome.status == RunStatus.SUCCESS, outcome.message
        table = read_table(str(console_data_dir / "warehouse" / "main" / "default" / "gcs_orders"))
        assert table.num_rows == FILES * RECORDS


async def test_a_changed_sftp_host_key_is_refused_and_a_cleared_pin_pins_again(
    user: User, sftp_server: SFTPServer, tmp_path: Path
) -> None:
    await user.open("/ingestions/new")
    user.find(marker="name").type("sftp_pinned")
    _sftp(user, sftp_server, tmp_path)
    other = "SHA256:" + "A" * 43
    user.find(marker="source.host_key_fingerprint").type(other)
    user.find(marker="test-connection").click()
    await user.should_see(f"presented host key {sftp_server.fingerprint}, not the pinned {other}", retries=100)
    assert _element(user, "source.host_key_fingerprint").value == other  # never re-pinned by the console
    user.find(marker="source.host_key_fingerprint").clear()
    user.find(marker="test-connection").click()
    await user.should_see(f"Host key {sftp_server.fingerprint} pinned", retries=100)
    assert _element(user, "source.host_key_fingerprint").value == sftp_server.fingerprint


async def test_another_kind_sets_the_first_kinds_secrets_and_endpoint_aside(
    user: User, services_of_app: Any, sftp_server: SFTPServer, tmp_path: Path
) -> None:
    """Azure's key and emulator endpoint are not saved with the SFTP source chosen after them; the reload switch is."""
    await user.open("/ingestions/new")
    user.find(marker="name").type("switched")
    user.find(marker="source-azure_blob").click()
    user.find(marker="source.endpoint_url").type("http://127.0.0.1:1")
    _element(user, "source.credentials.type").set_value("account_key")
    user.find(marker="source.credentials.account_key").type("azure-key")
    user.find(marker="source-sftp").click()
    assert _element(user, "source.credentials.type").options == {
        "password": "User name and password",
        "private_key": "User name and private key",
    }
    user.find(marker="source.path").type(sftp_server.path("in"))
    user.find(marker="source.credentials.username").type(SFTP_USER)
    user.find(marker="source.credentials.password").type("pw")
    _element(user, "source.reload_changed_files").set_value(True)
    user.find(marker="save-draft").click()
    await _step_is(user, "Destination")
    user.find(marker="destination.table").type("switched")
    user.find(marker="save-draft").click()
    source = (await _created(services_of_app)).spec.source
    assert source.credentials.model_dump(exclude_none=True) == {
        "type": "password",
        "username": SFTP_USER,
        "password": "pw",
    }
    assert source.endpoint_url is None and source.reload_changed_files


@pytest.fixture
def nothing_allowed(console_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app the `user` fixture builds after this allows no loopback host (the suite's environment does)."""
    monkeypatch.setenv("AUTOLOADER_EGRESS_ALLOW", "")


async def test_an_sftp_host_on_loopback_is_refused_when_saved(
    nothing_allowed: None, user: User, services_of_app: Any
) -> None:
    await user.open("/ingestions/new")
    user.find(marker="name").type("sftp_loopback")
    user.find(marker="source-sftp").click()
    user.find(marker="source.path").type("sftp://127.0.0.1:2222/in")
    user.find(marker="source.credentials.username").type(SFTP_USER)
    user.find(marker="source.credentials.password").type("pw")
    user.find(marker="save-draft").click()
    await _step_is(user, "Destination")
    user.find(marker="destination.table").type("loopback")
    user.find(marker="save-draft").click()
    await user.should_see("The host '127.0.0.1' is a loopback address", retries=50)
    assert services_of_app.store.list_ingestions() == []


async def test_a_missing_credential_is_said_under_its_own_field(user: User) -> None:
    await user.open("/ingestions/new")
    user.find(marker="name").type("sas")
    user.find(marker="source-azure_blob").click()
    user.find(marker="source.path").type("abfss://c@acct.dfs.core.windows.net/in/")
    _element(user, "source.credentials.type").set_value("sas")
    user.find(marker="test-connection").click()
    await user.should_see("sas credentials need sas_token")
    slot = _element(user, "error-source.credentials.sas_token")
    assert slot.visible and slot.text == "sas credentials need sas_token"


async def test_an_sftp_ingestion_saved_unchanged_keeps_its_key_passphrase_and_pin(
    user: User, services_of_app: Any
) -> None:
    """The stored secrets are never sent to the browser, and an unchanged save keeps them and the pinned key."""
    credentials = {"type": "private_key", "username": SFTP_USER, "private_key": "KEY TEXT", "password": "phrase"}
    source = {"type": "sftp", "credentials": credentials, "host_key_fingerprint": "SHA256:" + "B" * 43}
    stored = spec("sftp://files.example.com:2222/in", table="kept", name="kept", source=source)
    ingestion = services_of_app.ingestions.create(stored, activate=False)
    await user.open(f"/ingestions/{ingestion.id}/edit")
    await user.should_see(marker="source.credentials.private_key")
    for marker in ("source.credentials.private_key", "source.credentials.passphrase"):
        assert _element(user, marker).value == ""
    assert _element(user, "source.host_key_fingerprint").value == "SHA256:" + "B" * 43
    user.find(marker="save-draft").click()
    for _ in range(100):
        if any(e.action == "update" for e in services_of_app.views.audit(SYSTEM)):
            break
        await asyncio.sleep(0.05)
    assert services_of_app.store.get_ingestion(ingestion.id).spec.model_dump() == stored.model_dump()


def test_the_wizard_offers_the_credential_types_each_source_accepts() -> None:
    """The choices shown per kind of source are the ones a save accepts (core.config), no more and no fewer."""
    from app.pages.wizard.source_credentials import CREDENTIAL_CHOICES
    from core.config import CREDENTIAL_TYPES_BY_SOURCE

    for kind, usable in CREDENTIAL_TYPES_BY_SOURCE.items():
        assert set(CREDENTIAL_CHOICES[kind] or {"ambient": ""}) == set(usable), kind

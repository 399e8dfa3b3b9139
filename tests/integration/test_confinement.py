"""Local sources read only under AUTOLOADER_LOCAL_ROOTS, through the API and the runs: /etc, `..` escapes, symbolic
links out of the root (to a file or a folder), /proc/self/environ and the server's own key file are refused or
skipped and never read, nothing is stored; a root that holds the data dir or the metadata DB stops the start."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from app.bootstrap import build
from app.settings import Settings
from core.errors import ConfigError
from tests.conftest import clean_env, run_cli
from tests.helpers import write_json_files
from tests.services import free_port

SECRET = "TOPSECRET-3f9c"


@pytest.fixture
def database_url(state_dir: Path) -> str:
    """SQLite only: confinement does not depend on the metadata database."""
    return f"sqlite:///{state_dir / 'meta.db'}"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "landing"
    folder.mkdir()
    return folder


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder next to the root, holding a file no source may read."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.json").write_text(f'{{"secret": "{SECRET}"}}\n')
    return folder


@pytest.fixture
def settings(state_dir: Path, database_url: str, root: Path) -> Settings:
    """One root; no secret_key setting, so the server keeps its generated key in <data_dir>/secret.key."""
    return Settings(
        data_dir=state_dir / "data",
        database_url=database_url,
        local_roots=[root],
        egress_allow=[],
        heartbeat_seconds=0.5,
        stale_run_seconds=30,
    )


def body(path: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": extra.pop("name", "orders"),
        "source": {"type": "local", "path": path, "file_pattern": extra.pop("file_pattern", "**/*.json")},
        "format": extra.pop("format", {"type": "json"}),
        "destination": {"catalog": "main", "database": "sales", "table": "orders"},
        "schedule": {"mode": "manual", "backfill": {"mode": "all"}},
        **extra,
    }


def assert_refused(response: Any, root: Path) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "invalid_config" and error["field"] == "source.path"
    assert str(root) in error["message"] and "AUTOLOADER_LOCAL_ROOTS" in error["action"]
    return error


def test_etc_is_refused_and_nothing_of_it_is_echoed(api: Any, root: Path) -> None:
    csv = {"type": "csv", "options": {"header": False, "delimiter": ":"}}
    for path, pattern in (("/etc", "passwd"), ("/etc/", "*"), ("/proc/self", "environ")):
        tested = api.post("/api/v1/ingestions/test", json=body(path, file_pattern=pattern, format=csv))
        assert_refused(tested, root)
        assert "root:" not in tested.text
        assert_refused(api.post("/api/v1/ingestions", json=body(path, file_pattern=pattern, format=csv)), root)
    assert api.get("/api/v1/ingestions").json() == []


@pytest.mark.parametrize("escape", ["{root}/../outside", "{root}/sub/../../outside", "{outside}"])
def test_dot_dot_escapes_are_refused_at_test_create_and_update(
    api: Any, root: Path, outside: Path, escape: str
) -> None:
    path = escape.format(root=root, outside=outside)
    tested = api.post("/api/v1/ingestions/test", json=body(path))
    assert_refused(tested, root)
    assert SECRET not in tested.text
    assert_refused(api.post("/api/v1/ingestions", json=body(path)), root)

    (root / "in").mkdir()
    created = api.post("/api/v1/ingestions", json=body(str(root / "in")))
    assert created.status_code == 201, created.text
    updated = api.put(f"/api/v1/ingestions/{created.json()['id']}", json=body(path))
    assert_refused(updated, root)
    stored = api.get(f"/api/v1/ingestions/{created.json()['id']}").json()
    assert stored["source"]["path"] == str(root / "in")


def test_symlinks_out_are_skipped_with_a_reason_and_never_read(
    api: Any, services: Any, root: Path, outside: Path
) -> None:
    write_json_files(root / "in", 1, 5)
    key_file = services.settings.data_dir / "secret.key"
    assert key_file.exists()
    links = {
        "file-link.json": outside / "secret.json",
        "dir-link": outside,
        "master-key.json": key_file,
        "environ.json": Path("/proc/self/environ"),
    }
    for name, target in links.items():
        (root / "in" / name).symlink_to(target)

    tested = api.post("/api/v1/ingestions/test", json=body(str(root / "in")))
    assert tested.status_code == 200, tested.text
    preview = tested.json()
    assert preview["files"] == 1 and len(preview["sample_rows"]) == 5
    assert list(preview["bad_files"]) == sorted(str(root / "in" / name) for name in links)  # in path order
    assert all("AUTOLOADER_LOCAL_ROOTS" in reason for reason in preview["bad_files"].values())
    assert SECRET not in tested.text and key_file.read_text() not in tested.text

    created = api.post("/api/v1/ingestions", json=body(str(root / "in"), activate=True)).json()
    outcome = services.runs.run_now(str(created["id"]))
    assert outcome.status.value == "success", outcome
    assert outcome.metrics.records_ingested == 5
    assert "file-link.json skipped" in outcome.message and "AUTOLOADER_LOCAL_ROOTS" in outcome.message
    ledger = api.get(f"/api/v1/ingestions/{created['id']}/files").json()
    assert [f["path"] for f in ledger["items"]] == [str(p) for p in sorted((root / "in").glob("part-*.json"))]
    assert SECRET not in api.get(f"/api/v1/ingestions/{created['id']}/runs").text


def test_the_master_key_file_is_never_quoted(api: Any, services: Any, root: Path) -> None:
    key_file = services.settings.data_dir / "secret.key"
    key = key_file.read_text().strip()
    for path, pattern in ((str(services.settings.data_dir), "secret.key"), (f"{root}/../..", "**/secret.key")):
        tested = api.post("/api/v1/ingestions/test", json=body(path, file_pattern=pattern))
        assert tested.status_code == 422, tested.text
        assert key not in tested.text


def test_a_run_whose_source_left_the_roots_fails_naming_them(
    services: Any, settings: Settings, root: Path, tmp_path: Path
) -> None:
    """An ingestion saved under other roots: the run refuses to build its storage (nothing read)."""
    from tests.helpers import spec

    write_json_files(root / "in", 1, 3)
    ingestion = services.ingestions.create(spec(str(root / "in")), activate=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    narrowed = build(settings.model_copy(update={"local_roots": [elsewhere]}))
    try:
        outcome = narrowed.runs.run_now(str(ingestion.id))
    finally:
        narrowed.close()
    assert outcome.status.value == "failed" and outcome.metrics.records_ingested == 0
    (error,) = outcome.errors
    assert str(elsewhere) in error.message and "AUTOLOADER_LOCAL_ROOTS" in error.action


def test_a_good_path_under_the_root_loads(api: Any, services: Any, root: Path) -> None:
    write_json_files(root / "orders", 2, 10)
    created = api.post("/api/v1/ingestions", json=body(str(root / "orders"), activate=True))
    assert created.status_code == 201, created.text
    outcome = services.runs.run_now(str(created.json()["id"]))
    assert outcome.status.value == "success" and outcome.metrics.records_ingested == 20


# --- start-up -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["data dir", "data dir's parent", "metadata DB"])
def test_a_root_holding_the_servers_own_files_stops_the_start(state_dir: Path, tmp_path: Path, which: str) -> None:
    data = state_dir / "data"
    db_folder = tmp_path / "db"
    db_folder.mkdir()
    roots = {"data dir": data, "data dir's parent": state_dir, "metadata DB": db_folder}[which]
    url = f"sqlite:///{db_folder / 'meta.db'}" if which == "metadata DB" else f"sqlite:///{state_dir / 'meta.db'}"
    with pytest.raises(ConfigError) as info:
        build(Settings(data_dir=data, database_url=url, local_roots=[roots], secret_key="k"))
    error = info.value
    assert "AUTOLOADER_LOCAL_ROOTS" in error.message and str(roots.resolve()) in error.message
    assert error.field == "AUTOLOADER_LOCAL_ROOTS" and "AUTOLOADER_LOCAL_ROOTS" in error.action
    assert not (db_folder / "meta.db").exists(), "refused before the metadata database is touched"


def test_the_server_process_refuses_to_start(state_dir: Path) -> None:
    env = clean_env() | {
        "AUTOLOADER_DATA_DIR": str(state_dir / "data"),
        "AUTOLOADER_DATABASE_URL": f"sqlite:///{state_dir / 'data' / 'autoloader.db'}",
        "AUTOLOADER_SECRET_KEY": "test-secret-key",
        "AUTOLOADER_LOCAL_ROOTS": f"/srv/nothing,{state_dir}",
    }
    started = run_cli("serve", "--port", str(free_port()), env=env, timeout=60)
    assert started.returncode == 2, started.stdout + started.stderr
    assert "AUTOLOADER_LOCAL_ROOTS lists" in started.stderr and f"/srv/nothing, {state_dir}" in started.stderr
    assert "what to do:" in started.stderr and "Traceback" not in started.stderr


def test_the_default_root_is_the_landing_folder_of_the_data_dir(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AUTOLOADER_LOCAL_ROOTS", raising=False)
    settings = Settings(data_dir=state_dir / "data", database_url=f"sqlite:///{state_dir / 'meta.db'}")
    assert settings.local_roots == []
    services = build(settings)
    try:
        landing = state_dir / "data" / "landing"
        assert landing.is_dir() and services.guards.local_roots.roots == (os.path.realpath(landing),)
        write_json_files(landing / "orders", 1, 4)
        from tests.helpers import spec

        created = services.ingestions.create(spec(str(landing / "orders")), activate=True)
        loaded = services.runs.run_now(str(created.id))
        assert loaded.metrics.records_ingested == 4
        write_json_files(tmp_path / "elsewhere", 1, 4)
        with pytest.raises(ConfigError, match="outside the folders local sources may read"):
            services.ingestions.create(spec(str(tmp_path / "elsewhere"), table="t2", name="elsewhere"))
    finally:
        services.close()

"""The REST API (§14) end to end over the real routes, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from tests.helpers import read_table, spec, write_json_files


def body(path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "name": extra.pop("name", "orders"),
        "source": {"type": "local", "path": str(path), "file_pattern": "*.json"},
        "format": {"type": "json", "schema": {"on_schema_change": "auto_merge"}},
        "destination": {"catalog": "main", "database": "sales", "table": "orders"},
        **extra,
    }


def wait_for_run(api, ingestion_id: int, run_id: int, timeout: float = 30) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api.get(f"/api/v1/ingestions/{ingestion_id}/runs/{run_id}").json()
        if run["status"] not in ("queued", "running"):
            return run  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish: {run}")


def test_create_activate_run_and_read_back(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_json_files(tmp_path / "in", 3, 100)
    created = api.post("/api/v1/ingestions", json=body(tmp_path / "in"))
    assert created.status_code == 201, created.text
    ing = created.json()
    assert ing["status"] == "draft" and ing["table_name"] == "main.sales.orders"

    refused = api.post(f"/api/v1/ingestions/{ing['id']}/run")
    assert refused.status_code == 409 and "activate" in refused.json()["error"]["action"].lower()

    assert api.post(f"/api/v1/ingestions/{ing['id']}/activate").json()["status"] == "active"
    accepted = api.post(f"/api/v1/ingestions/{ing['id']}/run")
    assert accepted.status_code == 202
    run = wait_for_run(api, ing["id"], accepted.json()["run_id"])
    assert run["status"] == "success", run
    assert run["metrics"]["files_processed"] == 3 and run["metrics"]["records_ingested"] == 300
    assert run["metrics"]["duration_seconds"] > 0 and run["metrics"]["bytes_written"] > 0
    assert DeltaTable(ing["table_uri"]).to_pyarrow_table().num_rows == 300

    history = api.get(f"/api/v1/ingestions/{ing['id']}/runs").json()
    assert [r["id"] for r in history] == [run["id"]]
    ledger = api.get(f"/api/v1/ingestions/{ing['id']}/files", params={"status": "loaded"}).json()
    assert ledger["total"] == 3 and {f["records"] for f in ledger["items"]} == {100}
    metrics = api.get(f"/api/v1/ingestions/{ing['id']}/metrics").json()
    assert metrics["files_processed"] == 3 and len(metrics["daily"]) == 7
    assert metrics["daily"][-1]["records"] == 300
    versions = api.get(f"/api/v1/ingestions/{ing['id']}/schema-versions").json()
    assert versions[0]["version"] == 1 and {c["name"] for c in versions[0]["columns"]} >= {"id", "name"}
    assert [a["action"] for a in api.get("/api/v1/audit").json()][:3] == ["run", "activate", "create"]


def test_validation_errors_name_the_field(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = body(tmp_path)
    bad["destination"]["table"] = "no spaces allowed"
    response = api.post("/api/v1/ingestions", json=bad)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["field"] == "destination.table"
    assert error["action"]

    merge = body(tmp_path)
    merge["destination"]["write_mode"] = "merge"
    assert "merge key" in api.post("/api/v1/ingestions", json=merge).json()["error"]["message"]

    for table, said in (
        ("main.birds.penguins", "without dots"),
        ("a" * 200, "at most 128 characters (200 given)"),
        ("_DELTA_LOG", "the folder of a Delta table's log"),  # every run failed with 'No files in log segment'
    ):
        named = body(tmp_path)
        named["destination"]["table"] = table
        refused = api.post("/api/v1/ingestions", json=named).json()["error"]  # an outsider got "use letters, …"
        assert refused["field"] == "destination.table" and said in refused["message"], refused

    password = {"type": "password", "username": "u", "password": "p"}
    s3 = {"type": "s3", "path": "s3://bucket/in/", "credentials": password}
    mismatched = api.post("/api/v1/ingestions", json=body(tmp_path, source=s3))  # was saved, a secret nothing used
    assert mismatched.status_code == 422, mismatched.text
    assert "s3 sources cannot use 'password' credentials; use 'ambient' or 'access_key'" in mismatched.text
    local = {"type": "local", "path": str(tmp_path), "credentials": {"type": "sas", "sas_token": "sv=1"}}
    assert "local sources take no credentials" in api.post("/api/v1/ingestions", json=body(tmp_path, source=local)).text

    blank = api.post("/api/v1/ingestions", json=body(tmp_path, name="   "))  # showed as no title and "' '" in alerts
    assert blank.status_code == 422 and blank.json()["error"]["field"] == "name", blank.text
    assert "blank" in blank.json()["error"]["message"]


def test_names_are_normalised_and_refused_when_nothing_shows(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Found by an outsider: zero-width or control characters, an RTL override and `café` typed two ways gave names
    that looked blank, or like another one."""
    for name, said in (
        ("\u200b\u200b", "U+200B"),
        ("\u0301", "blank"),
        ("a\tb", "U+0009"),
        ("daily\u202e", "U+202E"),
        ("a\x01b", "U+0001"),
        ("dai\u2062ly", "U+2062"),  # an invisible operator: 'daily' twice, found by an outsider
        ("a\u200eb", "U+200E"),
        ("a\u2028b", "U+2028"),
        ("\u3164\u3164", "blank"),
        ("\u2800", "blank"),
    ):
        refused = api.post("/api/v1/ingestions", json=body(tmp_path, name=name))
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "name", (name, refused.text)
        assert said in refused.json()["error"]["message"], (name, refused.text)
    nfc = api.post("/api/v1/ingestions", json=body(tmp_path, name="caf\u00e9"))
    assert nfc.status_code == 201, nfc.text
    nfd = api.post("/api/v1/ingestions", json=body(tmp_path, name="cafe\u0301"))
    assert nfd.status_code == 409 and nfd.json()["error"]["field"] == "name", nfd.text
    family = api.post("/api/v1/ingestions", json=body(tmp_path, name="\U0001f468\u200d\U0001f469 orders"))
    assert family.status_code == 201, family.text  # a joiner inside an emoji is part of it


def test_the_cli_finds_a_digit_like_name_as_a_name(services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Found by an outsider: `autoloader run ²` crashed (int('²')), `run ٢٢` ran ingestion 22, and a 23-digit id
    overflowed SQLite's integer."""
    from core.errors import NotFound

    superscript = services.ingestions.create(spec(str(tmp_path), name="\u00b2"))
    assert services.store.find_ingestion("\u00b2").id == superscript.id
    with pytest.raises(NotFound):
        services.store.find_ingestion("\u0662\u0662")
    with pytest.raises(NotFound):
        services.store.find_ingestion("9" * 23)


def test_names_an_older_version_saved_still_load_and_can_be_fixed(api, services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Found by an outsider upgrading: a name of spaces saved by an older version made the list, the dashboard and
    the scheduler's start fail on every read, and the row could be neither renamed nor deleted."""
    from sqlalchemy import update

    from app.db.models import Ingestion as IngestionRow

    ids = [api.post("/api/v1/ingestions", json=body(tmp_path, name=n)).json()["id"] for n in ("a", "b", "spaced")]
    with services.store.session() as s:  # as the older version stored them
        for ingestion_id, old_name in zip(ids, ("   ", "spaced ", None), strict=True):
            if old_name is not None:
                s.execute(update(IngestionRow).where(IngestionRow.id == ingestion_id).values(name=old_name))
        s.commit()
    listed = api.get("/api/v1/ingestions")
    assert listed.status_code == 200 and {i["name"] for i in listed.json()} == {"   ", "spaced ", "spaced"}
    untouched = api.patch(f"/api/v1/ingestions/{ids[1]}", json={"schedule": {"mode": "manual"}})
    assert untouched.status_code == 200 and untouched.json()["name"] == "spaced ", untouched.text
    blank = api.patch(f"/api/v1/ingestions/{ids[0]}", json={"schedule": {"mode": "manual"}})
    assert blank.status_code == 422 and blank.json()["error"]["field"] == "name", blank.text
    renamed = api.patch(f"/api/v1/ingestions/{ids[0]}", json={"name": "was blank"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "was blank", renamed.text
    assert api.delete(f"/api/v1/ingestions/{ids[1]}").status_code == 204
    assert services.store.find_ingestion(" was blank ").id == ids[0]  # `autoloader run` finds a name as it is saved


def test_a_schema_nested_too_deep_is_refused_before_it_is_saved(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Found by an outsider: 250 levels were saved, then every read of the list answered 500 (the JSON encoder
    stops at 254)."""
    deep: dict[str, Any] = {"name": "id", "type": "bigint"}
    for _ in range(250):
        deep = {"nested": deep}
    manual = body(tmp_path, format={"type": "json", "schema": {"inference": "manual", "schema_json": [deep]}})
    refused = api.post("/api/v1/ingestions", json=manual)
    assert refused.status_code == 422 and "nests more than 64 levels" in refused.text, refused.text
    assert api.get("/api/v1/ingestions").status_code == 200


def test_a_boolean_is_not_taken_for_a_number(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`max_files_per_batch: true` was saved as 1 (batches of one file), `max_bad_record_ratio: false` as 0."""
    for field, extra in (
        ("limits.max_files_per_batch", {"limits": {"max_files_per_batch": True}}),
        ("quality.max_bad_record_ratio", {"quality": {"max_bad_record_ratio": False}}),
        ("quality.row_count_min", {"quality": {"row_count_min": True}}),
        ("cluster_id", {"cluster_id": True}),
    ):
        refused = api.post("/api/v1/ingestions", json=body(tmp_path, **extra))
        assert refused.status_code == 422 and refused.json()["error"]["field"] == field, refused.text
        assert "give a number" in refused.text
    made = api.post("/api/v1/ingestions", json=body(tmp_path, limits={"max_files_per_batch": 5})).json()
    assert made["limits"]["max_files_per_batch"] == 5
    moved = api.post(f"/api/v1/ingestions/{made['id']}/engine", json={"cluster_id": True})
    assert moved.status_code == 422, moved.text


def test_list_filters_refuse_values_no_field_has(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Found by an outsider: `?status=bogus` answered 200 with an empty list, as if nothing matched."""
    made = api.post("/api/v1/ingestions", json=body(tmp_path)).json()
    assert [i["id"] for i in api.get("/api/v1/ingestions?status=draft&source_type=local&mode=manual").json()] == [
        made["id"]
    ]
    for query in ("status=bogus", "status=ACTIVE", "source_type=ftp", "mode=x"):
        refused = api.get(f"/api/v1/ingestions?{query}")
        assert refused.status_code == 422, (query, refused.text)
        assert refused.json()["error"]["field"] == query.split("=")[0], refused.text
    files = api.get(f"/api/v1/ingestions/{made['id']}/files?status=loadded")
    assert files.status_code == 422 and "'loaded'" in files.text, files.text


def test_errors_have_code_message_action(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    missing = api.get("/api/v1/ingestions/999")
    assert missing.status_code == 404
    assert set(missing.json()["error"]) >= {"code", "message", "action"}

    made = api.post("/api/v1/ingestions", json=body(tmp_path)).json()
    duplicate = api.post("/api/v1/ingestions", json=body(tmp_path))
    assert duplicate.status_code == 409 and duplicate.json()["error"]["field"] == "name"
    spaced = api.post("/api/v1/ingestions", json=body(tmp_path, name=f" {made['name']}  "))  # looked like one
    assert spaced.status_code == 409 and spaced.json()["error"]["field"] == "name", spaced.text
    renamed = api.patch(f"/api/v1/ingestions/{made['id']}", json={"name": "  daily orders "})
    assert renamed.status_code == 200 and renamed.json()["name"] == "daily orders", renamed.text


def test_pause_blocks_runs_and_resume_allows_them(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_json_files(tmp_path / "in", 1, 5)
    ing = api.post("/api/v1/ingestions", json=body(tmp_path / "in", activate=True)).json()
    assert ing["status"] == "active"
    api.post(f"/api/v1/ingestions/{ing['id']}/pause")
    refused = api.post(f"/api/v1/ingestions/{ing['id']}/run")
    assert refused.status_code == 409 and "resume" in refused.json()["error"]["action"].lower()
    api.post(f"/api/v1/ingestions/{ing['id']}/resume")
    assert api.post(f"/api/v1/ingestions/{ing['id']}/run").status_code == 202


def test_locked_fields_and_secrets(api, services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = body(tmp_path, activate=True)
    data["source"] = {
        "type": "s3",
        "path": "s3://bucket/x/",
        "endpoint_url": "http://127.0.0.1:1",
        "credentials": {"type": "access_key", "access_key_id": "AK", "secret_access_key": "very-secret"},
    }
    ing = api.post("/api/v1/ingestions", json=data).json()
    assert ing["source"]["credentials"]["secret_access_key"] == "********"
    assert "very-secret" not in api.get(f"/api/v1/ingestions/{ing['id']}").text

    changed = body(tmp_path)
    changed["source"] = data["source"]
    changed["destination"]["table"] = "other"
    locked = api.put(f"/api/v1/ingestions/{ing['id']}", json=changed)
    assert locked.status_code == 409 and locked.json()["error"]["field"] == "destination"

    renamed = {**body(tmp_path, name="orders-v2"), "source": data["source"]}
    assert api.put(f"/api/v1/ingestions/{ing['id']}", json=renamed).json()["name"] == "orders-v2"

    patched = api.patch(f"/api/v1/ingestions/{ing['id']}", json={"name": "orders-v3"})  # credentials untouched
    assert patched.status_code == 200 and patched.json()["name"] == "orders-v3", patched.text
    stored = services.store.get_ingestion(ing["id"]).spec.source.credentials
    assert stored.secret_access_key == "very-secret"


def test_delete_with_and_without_table(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_json_files(tmp_path / "in", 1, 5)
    ing = api.post("/api/v1/ingestions", json=body(tmp_path / "in", activate=True)).json()
    run = api.post(f"/api/v1/ingestions/{ing['id']}/run").json()
    wait_for_run(api, ing["id"], run["run_id"])
    assert api.delete(f"/api/v1/ingestions/{ing['id']}", params={"drop_table": "true"}).status_code == 204
    assert api.get(f"/api/v1/ingestions/{ing['id']}").status_code == 404
    assert not Path(ing["table_uri"]).exists()


def test_test_endpoint_previews_without_writing(api, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_json_files(tmp_path / "in", 4, 10)
    (tmp_path / "in" / "skip.csv").write_text("a,b\n1,2\n")
    result = api.post("/api/v1/ingestions/test", json=body(tmp_path / "in"))
    assert result.status_code == 200, result.text
    data = result.json()
    assert data["files"] == 4 and data["message"].startswith("Connection successful — 4 files")
    assert [c["name"] for c in data["schema"]] == ["id", "name", "amount", "country"]
    assert len(data["sample_rows"]) == 5
    assert not (settings.data_dir / "warehouse").exists()
    assert api.get("/api/v1/ingestions").json() == []

    wrong = api.post("/api/v1/ingestions/test", json=body(tmp_path / "missing"))
    assert wrong.status_code == 400
    assert "does not exist" in wrong.json()["error"]["message"] and wrong.json()["error"]["action"]


def test_the_preview_of_a_semicolon_csv_read_with_commas_names_the_delimiter(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A `;` file whose values hold no comma reads as one column named after the whole header, and would load so:
    the preview says which delimiter the first row points to."""
    (tmp_path / "semi").mkdir()
    (tmp_path / "semi" / "p.csv").write_text("species;island;year\nAdelie;Torgersen;2007\nGentoo;Biscoe;2008\n")
    csv = body(tmp_path / "semi", format={"type": "csv", "options": {"header": True}})
    csv["source"]["file_pattern"] = "*.csv"
    data = api.post("/api/v1/ingestions/test", json=csv).json()
    assert len(data["schema"]) == 1, data["schema"]
    assert data["recommendations"][0] == (
        "The first row is one column holding ';' 2 times: the file looks ';'-separated; set "
        "format.options.delimiter to ';'."
    ), data["recommendations"]
    csv["format"]["options"]["delimiter"] = ";"
    fixed = api.post("/api/v1/ingestions/test", json=csv).json()
    assert [c["name"] for c in fixed["schema"]] == ["species", "island", "year"]
    assert not any("delimiter" in r for r in fixed["recommendations"])


def test_health(api) -> None:  # type: ignore[no-untyped-def]
    data = api.get("/api/v1/health").json()
    assert data["status"] == "ok" and data["database"] in ("sqlite", "postgresql")


def test_bad_cron_names_the_field(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = body(tmp_path, schedule={"mode": "scheduled", "frequency": "custom", "cron_expression": "61 * * * *"})
    error = api.post("/api/v1/ingestions", json=data).json()["error"]
    assert error["field"] == "schedule.cron_expression"
    assert "61" in error["message"] and "five fields" in error["message"]


def test_engine_is_locked_once_active(api, services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from app.db.models import ClusterCreate

    cluster = services.clusters.create(ClusterCreate(name="remote", connect_url="sc://127.0.0.1:1"))
    ing = api.post("/api/v1/ingestions", json=body(tmp_path, activate=True)).json()
    moved = api.put(f"/api/v1/ingestions/{ing['id']}", json=body(tmp_path, cluster_id=cluster.id))
    assert moved.status_code == 409 and moved.json()["error"]["field"] == "cluster_id"
    unknown = api.post("/api/v1/ingestions", json=body(tmp_path, name="other", cluster_id=999))
    assert unknown.status_code == 404


def test_patch_changes_only_the_fields_it_sends(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """An outsider found PUT the only way to change anything (the whole body, every time). PATCH is a JSON merge
    patch over the current settings, with PUT's checks and locks."""
    write_json_files(tmp_path / "in", 1, 10)
    ing = api.post("/api/v1/ingestions", json=body(tmp_path / "in")).json()
    cron = {"schedule": {"mode": "scheduled", "frequency": "custom", "cron_expression": "15 2 * * *"}}
    patched = api.patch(f"/api/v1/ingestions/{ing['id']}", json=cron)
    assert patched.status_code == 200, patched.text
    after = patched.json()
    assert after["schedule"]["cron_expression"] == "15 2 * * *"
    assert (after["source"], after["format"], after["name"]) == (ing["source"], ing["format"], ing["name"])
    assert api.get(f"/api/v1/ingestions/{ing['id']}").json()["schedule"]["cron_expression"] == "15 2 * * *"

    bad_cron = api.patch(f"/api/v1/ingestions/{ing['id']}", json={"schedule": {"cron_expression": "61 * * * *"}})
    assert bad_cron.status_code == 422 and bad_cron.json()["error"]["field"].startswith("schedule"), bad_cron.text
    no_name = api.patch(f"/api/v1/ingestions/{ing['id']}", json={"name": None})
    assert no_name.status_code == 422 and no_name.json()["error"]["field"] == "name", no_name.text
    outside = api.patch(f"/api/v1/ingestions/{ing['id']}", json={"source": {"path": "/etc"}})
    assert outside.status_code == 422 and "AUTOLOADER_LOCAL_ROOTS" in outside.json()["error"]["action"], outside.text
    assert api.patch(f"/api/v1/ingestions/{ing['id']}", json=["not", "an", "object"]).status_code == 422

    assert api.post(f"/api/v1/ingestions/{ing['id']}/activate").status_code == 200
    accepted = api.post(f"/api/v1/ingestions/{ing['id']}/run")
    assert wait_for_run(api, ing["id"], accepted.json()["run_id"])["status"] == "success"
    locked = api.patch(f"/api/v1/ingestions/{ing['id']}", json={"destination": {"table": "other"}})
    assert locked.status_code == 409 and locked.json()["error"]["field"] == "destination", locked.text


def test_the_preview_names_missing_value_markers_a_text_column_keeps(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Found by an outsider on palmerpenguins: `sex` holds NA in 11 rows; the numeric columns' NA became NULL, the
    text column kept the text and the checks said 0% NULL. The preview now says so, and which option changes it."""
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "penguins.csv").write_text("id,mass,sex\n1,3750,male\n2,NA,NA\n3,3800,female\n4,NA,NA\n")
    csv = body(tmp_path / "p", format={"type": "csv", "options": {"header": True}})
    csv["source"]["file_pattern"] = "*.csv"
    data = api.post("/api/v1/ingestions/test", json=csv).json()
    assert {c["name"]: c["type"] for c in data["schema"]}["mass"] == "bigint"
    advice = "Column 'sex' holds 'NA' 2 times in the sample: a text column keeps it as text; set "
    advice += "format.options.null_value to 'NA' to load it as NULL."
    assert advice in data["recommendations"], data["recommendations"]
    assert not any("'mass'" in r for r in data["recommendations"])
    csv["format"]["options"]["null_value"] = "NA"
    fixed = api.post("/api/v1/ingestions/test", json=csv).json()
    assert not any("holds 'NA'" in r for r in fixed["recommendations"]), fixed["recommendations"]


def test_the_preview_names_the_pattern_of_dates_written_another_way(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Found by an outsider: `2012/01/01` loaded as text with nothing said. The preview names the option and the
    pattern that reads it, both orders when no day is over 12, and the pattern it names types the column."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "sales.csv").write_text(
        "id,day,ordered,at\n1,2012/01/31,03/04/2020,31.01.2012 10:00\n2,2012/02/01,13/04/2020,01.02.2012 11:30\n"
    )
    csv = body(tmp_path / "d", format={"type": "csv", "options": {"header": True}})
    csv["source"]["file_pattern"] = "*.csv"
    data = api.post("/api/v1/ingestions/test", json=csv).json()
    said = data["recommendations"]
    day = "Column 'day' holds dates written like '2012/01/31', which load as text: set format.options.date_format "
    assert day + "to 'yyyy/MM/dd' to load it as a date." in said, said
    assert any("'ordered'" in line and "'dd/MM/yyyy' to" in line for line in said), said  # 13 is a day
    assert any("'at'" in line and "timestamp_format to 'dd.MM.yyyy HH:mm'" in line for line in said), said
    (tmp_path / "d" / "sales.csv").write_text("id,ordered\n1,03/04/2020\n")
    both = api.post("/api/v1/ingestions/test", json=csv).json()["recommendations"]
    assert any("'dd/MM/yyyy' or 'MM/dd/yyyy' (the sample does not tell" in line for line in both), both
    csv["format"]["options"]["date_format"] = "dd/MM/yyyy"
    typed = api.post("/api/v1/ingestions/test", json=csv).json()
    assert {c["name"]: c["type"] for c in typed["schema"]}["ordered"] == "date", typed["schema"]
    assert not any("holds dates" in line for line in typed["recommendations"]), typed["recommendations"]


def test_if_match_refuses_a_change_made_from_an_older_revision(api, services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Two editors: the later save undid the earlier one without a word (an outside attack through two tabs)."""
    write_json_files(tmp_path / "in", 1, 10)
    ing = api.post("/api/v1/ingestions", json=body(tmp_path / "in")).json()
    url, read_at = f"/api/v1/ingestions/{ing['id']}", ing["revision"]
    first = api.patch(url, json={"quality": {"row_count_min": 5}}, headers={"If-Match": f'"{read_at}"'})
    assert first.status_code == 200 and first.json()["revision"] == read_at + 1, first.text
    stale = api.patch(url, json={"quality": {"duration_sla_minutes": 9}}, headers={"If-Match": str(read_at)})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "edit_conflict", stale.text
    assert "changed after you opened it" in stale.json()["error"]["message"]
    whole = {k: ing[k] for k in ("name", "source", "format", "destination", "schedule", "quality", "limits")}
    assert api.put(url, json=whole, headers={"If-Match": str(read_at)}).status_code == 409
    kept = api.get(url).json()
    assert kept["quality"]["row_count_min"] == 5 and kept["quality"]["duration_sla_minutes"] is None
    assert api.post(f"{url}/activate").status_code == 200  # a status change is not a save of the settings
    assert api.get(url).json()["revision"] == read_at + 1
    for odd in ("soon", "²".encode("latin-1"), "-1", "1, 2"):  # "²" passes str.isdigit and failed int(): a 500
        assert api.patch(url, json={"name": "x"}, headers={"If-Match": odd}).status_code == 422, odd
    unconditional = api.patch(url, json={"quality": {"duration_sla_minutes": 9}})
    assert unconditional.status_code == 200 and unconditional.json()["revision"] == read_at + 2
    shown = api.get(url)
    assert shown.headers["ETag"] == f'"{read_at + 2}"'
    anything = api.patch(url, json={"quality": {"duration_sla_minutes": 10}}, headers={"If-Match": "*"})
    assert anything.status_code == 200 and anything.json()["revision"] == read_at + 3


def test_patch_and_put_guard_names_runs_and_secrets(api, services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Found by an attack helper on PATCH: a duplicate name was a 500 (PUT too), the source could change under a
    run reading it, and a stored secret followed a change of host or endpoint to wherever the caller pointed it."""
    write_json_files(tmp_path / "in", 1, 10)
    first = api.post("/api/v1/ingestions", json=body(tmp_path / "in", name="first")).json()
    second = api.post("/api/v1/ingestions", json=body(tmp_path / "in", name="second")).json()
    for method in ("patch", "put"):
        sent = {"name": "first"} if method == "patch" else body(tmp_path / "in", name="first")
        taken = getattr(api, method)(f"/api/v1/ingestions/{second['id']}", json=sent)
        assert taken.status_code == 409 and taken.json()["error"]["field"] == "name", taken.text

    assert api.post(f"/api/v1/ingestions/{first['id']}/activate").status_code == 200
    run_id = services.store.create_run(first["id"], "manual")
    services.store.mark_run_started(run_id, "test-owner")
    assert services.store.claim_run_slot(first["id"], run_id)
    elsewhere = {"source": {"path": str(tmp_path)}}
    busy = api.patch(f"/api/v1/ingestions/{first['id']}", json=elsewhere)
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "run_in_progress", busy.text
    assert api.patch(f"/api/v1/ingestions/{first['id']}", json={"schedule": {"mode": "manual"}}).status_code == 200
    services.store.release_run_slot(first["id"], run_id)
    assert api.patch(f"/api/v1/ingestions/{first['id']}", json=elsewhere).status_code == 200

    s3 = body(tmp_path, name="s3")
    s3["source"] = {
        "type": "s3", "path": "s3://bucket/x/", "endpoint_url": "http://127.0.0.1:1",
        "credentials": {"type": "access_key", "access_key_id": "AK", "secret_access_key": "very-secret"},
    }  # fmt: skip
    ing = api.post("/api/v1/ingestions", json=s3).json()
    url = f"/api/v1/ingestions/{ing['id']}"
    assert api.patch(url, json={"source": {"path": "s3://bucket/y/"}}).status_code == 200  # same bucket: kept
    for moved in ({"path": "s3://other-bucket/x/"}, {"endpoint_url": "http://127.0.0.2:1"}):
        refused = api.patch(url, json={"source": moved})
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "source.credentials", refused.text
    put = {**s3, "source": {**s3["source"], "path": "s3://other-bucket/x/"}}
    put["source"]["credentials"] = {**s3["source"]["credentials"], "secret_access_key": "********"}
    assert api.put(url, json=put).json()["error"]["field"] == "source.credentials"
    again = {"path": "s3://other-bucket/x/", "credentials": {"secret_access_key": "another-secret"}}
    assert api.patch(url, json={"source": again}).status_code == 200
    assert services.store.get_ingestion(ing["id"]).spec.source.credentials.secret_access_key == "another-secret"


def test_a_request_racing_a_delete_is_a_conflict_not_an_internal_error() -> None:
    """Found by an outsider: a PATCH or a run while a DELETE of the ingestion went through answered 500
    (StaleDataError, a foreign key IntegrityError). The database's refusals in such a race are mapped, not mocked:
    each route raises what SQLAlchemy raised there."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.orm.exc import StaleDataError

    from app.api.errors import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)

    @app.patch("/api/v1/stale")
    def stale() -> None:
        raise StaleDataError("UPDATE statement on table 'ingestion' expected to update 1 row(s); 0 were matched.")

    @app.post("/api/v1/orphan")
    def orphan() -> None:
        raise IntegrityError("INSERT INTO run", {}, Exception("FOREIGN KEY constraint failed"))

    @app.post("/api/v1/unique")
    def unique() -> None:
        raise IntegrityError("INSERT INTO run", {}, Exception("UNIQUE constraint failed: run.number"))

    with TestClient(app, raise_server_exceptions=False) as client:
        for answer in (client.patch("/api/v1/stale"), client.post("/api/v1/orphan")):
            assert answer.status_code == 409 and answer.json()["error"]["code"] == "conflict", answer.text
            assert "another request" in answer.json()["error"]["message"]
        assert client.post("/api/v1/unique").status_code == 500  # any other refusal is still a bug to see


def test_a_table_kept_from_a_deleted_ingestion_is_continued_not_loaded_twice(api, services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Found by an outsider: delete an ingestion keeping its table, create it again, and every file loaded a second
    time (60,000 rows, 30,000 distinct); two ingestions of one source into one table did the same."""
    folder = tmp_path / "in"
    write_json_files(folder, 3, 10)
    first = api.post("/api/v1/ingestions", json={**body(folder, name="first"), "activate": True}).json()
    wait_for_run(api, first["id"], api.post(f"/api/v1/ingestions/{first['id']}/run").json()["run_id"])

    twin = api.post("/api/v1/ingestions", json=body(folder, name="twin")).json()  # a draft loads nothing
    refused = api.post(f"/api/v1/ingestions/{twin['id']}/activate")
    assert refused.status_code == 409 and refused.json()["error"]["field"] == "destination.table", refused.text
    assert "'first' already loads" in refused.json()["error"]["message"]
    at_once = api.post("/api/v1/ingestions", json={**body(folder, name="twin2"), "activate": True})
    assert at_once.status_code == 409 and api.get("/api/v1/ingestions?status=draft").json()[0]["name"] == "twin"
    (tmp_path / "link").symlink_to(folder)
    for spelled, pattern in ((f"{tmp_path}//in", "*.json"), (str(tmp_path / "link"), "*.json"), (str(folder), "**")):
        other = {**body(Path(spelled), name="spelled"), "activate": True}  # found by an outsider: 10 loads of one file
        other["source"].update(path=spelled, file_pattern=pattern)
        answer = api.post("/api/v1/ingestions", json=other)
        assert answer.status_code == 409, (spelled, pattern, answer.text)
    elsewhere = body(folder, name="elsewhere")
    elsewhere["destination"]["table"] = "orders_copy"
    assert api.post("/api/v1/ingestions", json=elsewhere).status_code == 201  # another table is fine

    assert api.delete(f"/api/v1/ingestions/{first['id']}").status_code == 204  # the table is kept
    grown = sorted(folder.iterdir())[0]  # found by an outsider: a file grown since its load was taken as loaded
    with grown.open("a") as out:
        out.write('{"id": 200}\n')
    os.utime(grown, (time.time() + 5, time.time() + 5))
    through_link = body(tmp_path / "link", name="again")  # the same folder, spelled through a symlink
    said = api.post("/api/v1/ingestions/test", json=through_link).json()["recommendations"]
    assert said[0].startswith("Table main.sales.orders already holds 30 rows of 3 listed files: activating"), said
    assert "(1 file changed since: the first run reports them)" in said[0], said
    again = api.post("/api/v1/ingestions", json={**through_link, "activate": True}).json()
    write_json_files(folder, 1, 10, start_id=100, prefix="new")
    run = wait_for_run(api, again["id"], api.post(f"/api/v1/ingestions/{again['id']}/run").json()["run_id"])
    assert run["status"] == "success" and run["metrics"]["files_processed"] == 1, run
    assert [e["file"].rsplit("/", 1)[-1] for e in run["errors"] if e["kind"] == "file_changed"] == [grown.name], run
    ids = read_table(services.embedded.table_uri(services.store.get_ingestion(again["id"]).spec.destination))
    assert sorted(ids.column("id").to_pylist()) == [*range(30), *range(100, 110)]

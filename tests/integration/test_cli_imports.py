"""`autoloader run` imports only what a run needs (issue #14: a cron run in under a second, process start included).

Module presence, not timing (timings are in bench/bench_cli_start.py): after a run of an ingestion over an empty
folder, on a database already at head, the process holds no web stack (NiceGUI, FastAPI), no scheduler, no read side,
no alembic and no Arrow / delta-rs. A new file does bring Arrow in: the guard is about what a run loads, not that it
never does. Neither brings pandas in (0.5 to 1.4 s): pyarrow would import it only to ask whether a value is a
pandas object.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import clean_env
from tests.helpers import spec, write_json_files

NOT_FOR_A_RUN = [
    "nicegui",
    "fastapi",
    "starlette",
    "uvicorn",
    "alembic",  # the database is at head: one query says so
    "pyarrow",  # nothing to read
    "deltalake",
    "numpy",
    "pandas",  # pyarrow's probe for pandas objects is skipped (core/formats/arrow_pandas.py)
    "pyspark",
    "argon2",  # accounts: the server's
    "cryptography",  # no stored credential to decrypt
    "app.scheduler",
    "app.views",
    "app.db.queries",  # the read side
    "app.services.ingestions",
    "core.engines.embedded",
    "core.formats",
]

_RUN_AND_REPORT = """
import json, sys
from app.cli import main
code = main(["run", sys.argv[1], "--json"])
print(json.dumps({"code": code, "loaded": sorted(set(sys.argv[2:]) & set(sys.modules))}))
"""


def _run_cli_reporting_modules(settings, name: str) -> dict:  # type: ignore[no-untyped-def]
    env = clean_env() | {
        "AUTOLOADER_DATA_DIR": str(settings.data_dir),
        "AUTOLOADER_DATABASE_URL": settings.resolved_database_url,
        "AUTOLOADER_SECRET_KEY": "test-secret-key",
    }
    proc = subprocess.run(
        [sys.executable, "-c", _RUN_AND_REPORT, name, *NOT_FOR_A_RUN],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    run = json.loads(lines[0])
    report: dict = json.loads(lines[-1])
    report["run"] = run
    return report


def test_a_run_over_an_empty_folder_imports_only_what_it_needs(services, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "empty").mkdir()
    services.ingestions.create(spec(str(tmp_path / "empty"), name="nightly"), activate=True)

    report = _run_cli_reporting_modules(settings, "nightly")

    assert report["code"] == 0 and report["run"]["status"] == "success", report
    assert report["loaded"] == [], f"`autoloader run` imported modules a run over no new file does not need: {report}"


def test_a_run_that_loads_files_still_loads_them(services, settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The lazy imports happen when needed: a new file is read (Arrow) and committed (delta-rs) by the same command."""
    write_json_files(tmp_path / "in", 2, 5)
    services.ingestions.create(spec(str(tmp_path / "in"), name="nightly"), activate=True)

    report = _run_cli_reporting_modules(settings, "nightly")

    assert report["code"] == 0 and report["run"]["metrics"]["records_ingested"] == 10, report
    assert {"pyarrow", "deltalake", "core.engines.embedded"} <= set(report["loaded"])
    assert not {"nicegui", "fastapi", "alembic", "app.scheduler", "app.views", "pandas"} & set(report["loaded"])

"""The README's quickstart, run as written: its bash block, on a free port and a temporary data dir."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import clean_env
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]


def quickstart_script() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Quickstart") :]
    match = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert match, "the quickstart has no bash block"
    return match.group(1)


@pytest.mark.slow
def test_the_quickstart_runs_as_written(tmp_path: Path) -> None:
    port = free_port()
    script = quickstart_script().replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    server = f"autoloader serve --port {port} > {tmp_path}/server.log 2>&1 & echo $! > {tmp_path}/pid"
    script = script.replace("autoloader serve &", server)
    script = script.replace("'data/warehouse/", f"'{tmp_path}/data/warehouse/")
    venv_bin = str(Path(sys.executable).parent)
    env = clean_env() | {"AUTOLOADER_DATA_DIR": str(tmp_path / "data"), "PATH": f"{venv_bin}:{os.environ['PATH']}"}
    script = script.replace(".venv/bin/", f"{venv_bin}/")
    # no `set -e`: delta-rs may abort while the reading interpreter exits, after the table was printed; each step
    # is checked by its output below instead
    wrapped = f'{script}\nsleep 3\ncurl -sf -H "$AUTH" http://127.0.0.1:{port}/api/v1/ingestions/1/runs\n'
    try:
        done = subprocess.run(["bash", "-c", wrapped], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    finally:
        pid_file = tmp_path / "pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]  # the last step: the runs answer
    assert '"name":"orders"' in done.stdout.replace(" ", "")
    assert '"status":"success"' in done.stdout.replace(" ", "")
    assert "order_id" in done.stdout or "pyarrow.Table" in done.stdout

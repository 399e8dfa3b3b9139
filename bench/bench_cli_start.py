"""End-to-end wall time of `autoloader run NAME` as cron or Airflow runs it: a new process each time.

Run from the project root:

    .venv/bin/python bench/bench_cli_start.py              # 5 repeats of each case
    .venv/bin/python bench/bench_cli_start.py --repeats 9 --importtime

Two cases, each the median of --repeats runs of `python -m app.cli run NAME` in a fresh process (interpreter start,
imports, settings, database check, the run, exit — everything a cron job waits for). Besides the wall time it prints
the CPU time (user + system) of the process, from getrusage(RUSAGE_CHILDREN): on a machine shared with other work it
moves much less than the wall time.

  empty   an ingestion over an empty folder: nothing to load, so the figure is the fixed cost of the command.
  ten     an ingestion whose folder gets 10 new small JSON files before every run (written outside the timing).

The metadata database (SQLite) and warehouse live in a temporary work directory; both ingestions are created and run
once beforehand in a child process, so the timed runs find the database at head and the table made. With
--importtime the script also prints the ten slowest top-level imports of one `empty` run (`python -X importtime`).

Bytecode: the timed processes inherit the environment. Where PYTHONDONTWRITEBYTECODE is set (as in the sandbox this
was written in), the project's own modules are compiled from source at every start (about 0.1 s here), which an
installed package never does; --cache-bytecode unsets it for the timed processes, so their first run writes
__pycache__ next to the sources (ignored by git) and the others read it, as after `pip install`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EMPTY = "bench-empty"
TEN = "bench-ten"
FILES_PER_RUN = 10
ROWS_PER_FILE = 20


def cli_env(workdir: Path, cache_bytecode: bool = False) -> dict[str, str]:
    """The environment of the timed processes: the work directory's state, nothing from a .env file."""
    dropped = ("AUTOLOADER_", "PYTEST", *(("PYTHONDONTWRITEBYTECODE",) if cache_bytecode else ()))
    keep = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    return keep | {
        "AUTOLOADER_DATA_DIR": str(workdir / "state"),
        "AUTOLOADER_SECRET_KEY": "bench",
        "AUTOLOADER_LOCAL_ROOTS": str(workdir / "input"),
        "PYTHONPATH": str(ROOT),
    }


def write_files(folder: Path, batch: int) -> None:
    """FILES_PER_RUN JSON-lines files with names no earlier batch used."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(FILES_PER_RUN):
        first = (batch * FILES_PER_RUN + index) * ROWS_PER_FILE
        ids = range(first, first + ROWS_PER_FILE)
        rows = (json.dumps({"id": i, "name": f"user-{i}", "amount": i * 0.5}) for i in ids)
        (folder / f"part-{batch:04d}-{index:02d}.json").write_text("\n".join(rows) + "\n")


def set_up(workdir: Path) -> None:
    """Create both ingestions and run each once, in a child process (so this one stays light)."""
    (workdir / "input" / "empty").mkdir(parents=True)
    write_files(workdir / "input" / "ten", 0)
    script = f"""
from app.bootstrap import build
from app.settings import Settings
from core.config import IngestionSpec

svc = build(Settings())
for name, folder in (({EMPTY!r}, "empty"), ({TEN!r}, "ten")):
    spec = IngestionSpec.model_validate({{
        "name": name,
        "source": {{"type": "local", "path": {str(workdir / "input")!r} + "/" + folder}},
        "format": {{"type": "json"}},
        "destination": {{"catalog": "main", "database": "bench", "table": name.replace("-", "_")}},
    }})
    svc.ingestions.create(spec, activate=True)
    assert svc.runs.run_now(name).status.value == "success"
svc.close()
"""
    subprocess.run([sys.executable, "-c", script], env=cli_env(workdir), cwd=workdir, check=True)


@dataclass
class Timed:
    wall: float
    cpu: float
    proc: subprocess.CompletedProcess[str]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_run(workdir: Path, name: str, *python_flags: str, cache_bytecode: bool = False) -> Timed:
    command = [sys.executable, *python_flags, "-m", "app.cli", "run", name, "--json"]
    env = cli_env(workdir, cache_bytecode)
    cpu_before = children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(command, env=env, cwd=workdir, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"autoloader run {name} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return Timed(wall, children_cpu() - cpu_before, proc)


def files_loaded(proc: subprocess.CompletedProcess[str]) -> int:
    return int(json.loads(proc.stdout.splitlines()[-1])["metrics"]["files_processed"])


def slowest_imports(stderr: str, count: int = 10) -> list[tuple[float, str]]:
    """Top-level entries of `-X importtime` (cumulative microseconds), slowest first, in seconds. A nested import is
    indented by two more spaces after the last bar than the import that pulled it in."""
    rows = []
    for line in stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue
        name = parts[2]
        if len(name) - len(name.lstrip()) == 1:
            rows.append((int(parts[1]) / 1e6, name.strip()))
    return sorted(rows, reverse=True)[:count]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--importtime", action="store_true", help="also print the slowest imports of one empty run")
    parser.add_argument("--cache-bytecode", action="store_true", help="let the timed processes cache bytecode")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="autoloader-cli-bench-"))
    cached = args.cache_bytecode
    try:
        set_up(workdir)
        timed_run(workdir, EMPTY, cache_bytecode=cached)  # untimed: writes the bytecode cache if asked to
        empty: list[Timed] = []
        ten: list[Timed] = []
        for repeat in range(args.repeats):  # interleaved, so drift on a shared machine hits both alike
            run = timed_run(workdir, EMPTY, cache_bytecode=cached)
            assert files_loaded(run.proc) == 0, run.proc.stdout
            empty.append(run)
            write_files(workdir / "input" / "ten", repeat + 1)
            run = timed_run(workdir, TEN, cache_bytecode=cached)
            assert files_loaded(run.proc) == FILES_PER_RUN, run.proc.stdout
            ten.append(run)
        bytecode = "cached" if cached or not os.environ.get("PYTHONDONTWRITEBYTECODE") else "compiled at every start"
        print(
            f"python {sys.version.split()[0]}, cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f}, "
            f"{args.repeats} repeats, SQLite metadata, project bytecode {bytecode}"
        )
        print(f"{'case':<36} {'wall median s':>13} {'min':>6} {'max':>6} {'cpu median s':>13}")
        for label, runs in (
            ("autoloader run: empty folder", empty),
            (f"autoloader run: {FILES_PER_RUN} new small files", ten),
        ):
            walls = [r.wall for r in runs]
            cpu = statistics.median(r.cpu for r in runs)
            print(f"{label:<36} {statistics.median(walls):13.3f} {min(walls):6.3f} {max(walls):6.3f} {cpu:13.3f}")
        if args.importtime:
            profiled = timed_run(workdir, EMPTY, "-X", "importtime", cache_bytecode=cached)
            print("\nslowest top-level imports of one empty run (cumulative):")
            for seconds, name in slowest_imports(profiled.proc.stderr):
                print(f"  {seconds:6.3f} s  {name}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

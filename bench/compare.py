"""Issue 14's comparison in one command: the product next to the floor, dlt and (with --spark) Spark, same data.

    .venv/bin/python bench/compare.py                      # default sizes, 3 interleaved repeats
    .venv/bin/python bench/compare.py --quick --repeats 1  # small sizes: a smoke test in seconds
    .venv/bin/python bench/compare.py --spark --no-dlt --workdir /tmp/al-compare --keep

Workloads (input generated first with a fixed seed, in this process, outside every timing):
  first load   2,000 JSON-lines files of 200 flat rows (~100 bytes each): 400,000 rows into a new Delta table
  no-op        the same folder again: nothing new
  +10 files    10 new files of 200 rows land in the folder, then one run
  CSV          one 1 GiB CSV file (bench_embedded.py's generator, 12 columns) into a new table
(--quick: 40 files of 50 rows, +10 files, a 4 MiB CSV.)

Systems:
  api     the product through its service layer, in process: `RunService.run_now` (what POST /ingestions/{id}/run
          runs) in one child process that imported and built everything first, as a started server has; only the
          call is timed. No HTTP.
  cli     the product through `python -m app.cli run NAME`: a new process per run, its whole wall time (process
          start, imports and database check included), as cron or Airflow sees it.
  floor   pyarrow + delta-rs by hand, in a child process: read the files with pyarrow (JSON: read_json per file;
          CSV: the streaming CSV reader) and write them with one `write_deltalake` call; only that is timed. No
          ledger, no exactly-once, no schema checks: the work any loader must do. It has no no-op.
  dlt     dlt's filesystem source (`modification_date` incremental) into its filesystem destination as Delta
          (bench/dlt_job.py), run by the python of a virtualenv of its own under ~/.cache/autoloader-bench/dlt-venv,
          made on first use; `pipeline.run` is timed. Never a product dependency.
  spark   (--spark) on one local Spark Connect server (bench_spark.py's start_cluster): the product's Spark engine
          (`runs.run_now`, table format parquet) and a hand-written `availableNow` stream into parquet
          (bench_spark.run_stream), first loads only; the server's start-up is printed apart.

Every (system, repeat) gets its own landing folder (hard links to the generated files) and its own tables, so the
+10 files of one system are no other system's input. Each repeat runs every system once, the order rotated from
repeat to repeat (interleaved), and the table shows the median and minimum of the repeats, the ratio of the median
to the floor's, and the peak RSS: of the child process that ran the step, from os.wait4's rusage (ru_maxrss); in the
api and floor children, which run several steps, the peak is reset before each step (/proc/self/clear_refs) and read
after it (VmHWM). The rows each table holds after each step are checked against the generated input.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bench_embedded as gen  # the CSV generator, the ingestion spec and the memory helpers are shared

ROOT = Path(__file__).resolve().parents[1]
RESULT_PREFIX = "COMPARE_RESULT "
DLT_VENV = Path.home() / ".cache" / "autoloader-bench" / "dlt-venv"
DLT_REQUIREMENTS = ["dlt[filesystem,deltalake]==1.31.0", "pandas<3"]
SEED = 20261130
WORKLOADS = {
    "first": "first load (json)",
    "noop": "no-op (json)",
    "extra": "+10 files (json)",
    "csv": "CSV first load",
}


@dataclass(frozen=True)
class Sizes:
    files: int
    rows_per_file: int
    extra_files: int
    csv_mb: int

    def label(self, workload: str) -> str:
        if workload == "first":
            return f"first load: {self.files:,} json, {self.files * self.rows_per_file:,} rows"
        if workload == "noop":
            return f"no-op over {self.files:,} loaded files"
        if workload == "extra":
            return f"+{self.extra_files} files"
        return f"CSV {self.csv_mb:,} MiB, first load"


DEFAULT = Sizes(files=2_000, rows_per_file=200, extra_files=10, csv_mb=1024)
QUICK = Sizes(files=40, rows_per_file=50, extra_files=10, csv_mb=4)


# ---------------------------------------------------------------------------------------------------------------------
# Input


def write_json_files(folder: Path, prefix: str, count: int, rows: int, first_id: int, rng: random.Random) -> int:
    """`count` JSON-lines files of `rows` flat records with ids from `first_id`; returns the next id."""
    folder.mkdir(parents=True, exist_ok=True)
    next_id = first_id
    for index in range(count):
        lines = []
        for _ in range(rows):
            record = {
                "id": next_id,
                "ts": f"2026-11-{1 + next_id % 28:02d}T{next_id % 24:02d}:{next_id % 60:02d}:00Z",
                "user_id": rng.randrange(1, 100_000),
                "event": rng.choice(("view", "click", "cart", "buy")),
                "amount": round(rng.uniform(0, 500), 2),
                "country": rng.choice(("DE", "US", "FR", "GB", "JP")),
            }
            lines.append(json.dumps(record, separators=(",", ":")))
            next_id += 1
        (folder / f"{prefix}-{index:06d}.json").write_text("\n".join(lines) + "\n")
    return next_id


def generate(workdir: Path, sizes: Sizes) -> dict[str, int]:
    """The JSON base and extra files and the CSV, reused when the work directory has them at these sizes."""
    manifest_file = workdir / "input" / "compare.manifest.json"
    wanted = {"files": sizes.files, "rows_per_file": sizes.rows_per_file, "extra": sizes.extra_files, "seed": SEED}
    manifest = json.loads(manifest_file.read_text()) if manifest_file.exists() else {}
    if {k: manifest.get(k) for k in wanted} != wanted:
        print(f"[gen] {sizes.files:,} + {sizes.extra_files} JSON files ...", flush=True)
        for kind in ("json", "extra"):
            shutil.rmtree(workdir / "input" / kind, ignore_errors=True)
        rng = random.Random(SEED)
        next_id = write_json_files(workdir / "input" / "json", "base", sizes.files, sizes.rows_per_file, 0, rng)
        time.sleep(0.01)  # the extra files are strictly newer (dlt's incremental goes by modification time)
        write_json_files(workdir / "input" / "extra", "extra", sizes.extra_files, sizes.rows_per_file, next_id, rng)
        manifest = wanted
        manifest_file.write_text(json.dumps(manifest))
    csv = gen.read_manifest(workdir, "csv")
    if csv is None or csv.get("megabytes") != sizes.csv_mb:
        print(f"[gen] CSV of {sizes.csv_mb:,} MiB ...", flush=True)
        csv = gen.generate_csv(workdir, sizes.csv_mb)
        gen.manifest_path(workdir, "csv").write_text(json.dumps(csv))
    os.sync()
    return {
        "first": sizes.files * sizes.rows_per_file,
        "noop": sizes.files * sizes.rows_per_file,
        "extra": (sizes.files + sizes.extra_files) * sizes.rows_per_file,
        "csv": int(csv["records"]),
    }


def landing(workdir: Path, system: str, repeat: int) -> Path:
    """A fresh folder of hard links to the base JSON files, for one system's repeat."""
    folder = workdir / "landing" / f"{system}-{repeat}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for path in sorted((workdir / "input" / "json").iterdir()):
        os.link(path, folder / path.name)
    return folder


def scratch(workdir: Path, kind: str, system: str, repeat: int, csv: bool) -> Path:
    """A new, empty folder for one run's state or output. Kept apart from the landing folders: a local root of the
    product may not hold its data dir."""
    folder = workdir / kind / f"{system}-{repeat}{'-csv' if csv else ''}"
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def add_extra_files(workdir: Path, folder: Path) -> list[Path]:
    added = []
    for path in sorted((workdir / "input" / "extra").iterdir()):
        os.link(path, folder / path.name)
        added.append(folder / path.name)
    return added


# ---------------------------------------------------------------------------------------------------------------------
# Processes and their memory


@dataclass
class Step:
    seconds: float
    rss_mib: float
    rows: int
    note: str = ""


@dataclass
class Results:
    steps: dict[tuple[str, str], list[Step]] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)

    def add(self, workload: str, system: str, step: Step) -> None:
        self.steps.setdefault((workload, system), []).append(step)


def run_child(command: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run a process to its end; return it and its peak RSS in MiB (os.wait4: the child's own rusage)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(command, stdout=out, stderr=err, text=True, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(command, proc.returncode, out.read(), err.read())
    return done, usage.ru_maxrss / 1024


def results_of(proc: subprocess.CompletedProcess[str], what: str) -> list[dict[str, Any]]:
    lines = proc.stdout.splitlines()
    found = [json.loads(line[len(RESULT_PREFIX) :]) for line in lines if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return found


def reset_peak_rss() -> None:
    """Linux: the peak RSS (VmHWM) starts again from the current RSS; silently nothing elsewhere."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def product_env(workdir: Path, state: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOLOADER_", "PYTEST"))}
    return keep | {
        "AUTOLOADER_DATA_DIR": str(state),
        "AUTOLOADER_SECRET_KEY": "bench",
        "AUTOLOADER_LOCAL_ROOTS": f"{workdir / 'input'},{workdir / 'landing'}",
        "PYTHONPATH": str(ROOT),
    }


# ---------------------------------------------------------------------------------------------------------------------
# Child processes (this script again, with --child)


def child_product(args: argparse.Namespace) -> None:
    """api: build the container (untimed), then one `run_now` per step, each timed and its peak RSS read."""
    from deltalake import DeltaTable

    from app.bootstrap import build
    from app.settings import Settings
    from core.config import IngestionSpec

    source = Path(args.source)
    svc = build(Settings(_env_file=None))
    try:
        csv = args.format == "csv"
        fmt: dict[str, Any] = {"type": "csv", "options": {"header": True}} if csv else {"type": "json"}
        body = gen._spec("bench", source, fmt, "events")
        ingestion = svc.ingestions.create(IngestionSpec.model_validate(body), activate=True)
        uri = svc.embedded.table_uri(ingestion.spec.destination)
        for step in args.steps.split(","):
            if step == "extra":
                for path in sorted(Path(args.extra).iterdir()):
                    os.link(path, source / path.name)
            reset_peak_rss()
            started = time.perf_counter()
            outcome = svc.runs.run_now(ingestion.name)
            seconds = time.perf_counter() - started
            note = "" if outcome.status.value == "success" else f"{outcome.status.value}: {outcome.message}"
            emit(step, seconds, gen.proc_status_mib("VmHWM"), DeltaTable(uri).count(), note)
    finally:
        svc.close()


def child_cli_setup(args: argparse.Namespace) -> None:
    """cli: create the ingestion the timed `autoloader run` processes run (untimed)."""
    from app.bootstrap import build
    from app.settings import Settings
    from core.config import IngestionSpec

    svc = build(Settings(_env_file=None))
    try:
        fmt: dict[str, Any] = {"type": "csv", "options": {"header": True}} if args.format == "csv" else {"type": "json"}
        body = gen._spec("bench", Path(args.source), fmt, "events")
        svc.ingestions.create(IngestionSpec.model_validate(body), activate=True)
    finally:
        svc.close()


def child_floor(args: argparse.Namespace) -> None:
    """floor: pyarrow reads, one write_deltalake per step; imports untimed."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.json as pjson
    from deltalake import DeltaTable, write_deltalake

    source, table = Path(args.source), args.table
    for step in args.steps.split(","):
        reset_peak_rss()
        started = time.perf_counter()
        if args.format == "csv":
            reader = pcsv.open_csv(next(source.glob("*.csv")))
            write_deltalake(table, reader, mode="append")
        else:
            paths = sorted(source.glob("*.json")) if step == "first" else sorted(Path(args.extra).glob("*.json"))
            write_deltalake(table, pa.concat_tables([pjson.read_json(p) for p in paths]), mode="append")
        seconds = time.perf_counter() - started
        emit(step, seconds, gen.proc_status_mib("VmHWM"), DeltaTable(table).count())


def emit(step: str, seconds: float, rss_mib: float, rows: int, note: str = "") -> None:
    result = {"step": step, "seconds": seconds, "rss_mib": rss_mib, "rows": rows, "note": note}
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------------------------------------------------
# The systems, from the parent


def child_command(role: str, **options: str) -> list[str]:
    command = [sys.executable, __file__, "--child", role]
    for key, value in options.items():
        command += [f"--{key}", value]
    return command


def steps_to_results(found: list[dict[str, Any]], system: str, results: Results) -> None:
    for r in found:
        results.add(r["step"], system, Step(r["seconds"], r["rss_mib"], r["rows"], r["note"]))


def run_api(workdir: Path, repeat: int, results: Results, csv: bool) -> None:
    source = (workdir / "input" / "csv") if csv else landing(workdir, "api", repeat)
    state = scratch(workdir, "state", "api", repeat, csv)
    steps = "csv" if csv else "first,noop,extra"
    command = child_command("api", source=str(source), format="csv" if csv else "json", steps=steps)
    command += ["--extra", str(workdir / "input" / "extra")]
    proc, _ = run_child(command, product_env(workdir, state))
    steps_to_results(results_of(proc, "api"), "api", results)


def run_cli(workdir: Path, repeat: int, results: Results, csv: bool) -> None:
    source = (workdir / "input" / "csv") if csv else landing(workdir, "cli", repeat)
    state = scratch(workdir, "state", "cli", repeat, csv)
    env = product_env(workdir, state)
    setup, _ = run_child(child_command("cli-setup", source=str(source), format="csv" if csv else "json"), env)
    if setup.returncode != 0:
        raise RuntimeError(f"cli set-up failed: {setup.stderr.strip()[-2000:]}")
    for step in ["csv"] if csv else ["first", "noop", "extra"]:
        if step == "extra":
            add_extra_files(workdir, source)
        started = time.perf_counter()
        proc, rss = run_child([sys.executable, "-m", "app.cli", "run", "bench", "--json"], env)
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"autoloader run failed (exit {proc.returncode}): {proc.stdout} {proc.stderr[-2000:]}")
        record = json.loads(proc.stdout.strip().splitlines()[-1])
        note = "" if record["status"] == "success" else f"{record['status']}: {record['message']}"
        rows = table_rows(state / "warehouse" / "main" / "bench" / "events")
        results.add(step, "cli", Step(seconds, rss, rows, note))


def table_rows(uri: Path) -> int:
    from deltalake import DeltaTable

    return int(DeltaTable(str(uri)).count()) if (uri / "_delta_log").exists() else 0


def run_floor(workdir: Path, repeat: int, results: Results, csv: bool) -> None:
    table = scratch(workdir, "out", "floor", repeat, csv)
    source = workdir / "input" / ("csv" if csv else "json")
    command = child_command(
        "floor", source=str(source), format="csv" if csv else "json", steps="csv" if csv else "first,extra"
    )
    command += ["--extra", str(workdir / "input" / "extra"), "--table", str(table)]
    proc, _ = run_child(command)
    steps_to_results(results_of(proc, "floor"), "floor", results)


def dlt_python(results: Results) -> Path | None:
    """The python of dlt's own virtualenv, made (and dlt installed) on first use; None, with the reason noted,
    when that fails."""
    python = DLT_VENV / "bin" / "python"
    marker = DLT_VENV / ".installed"
    if marker.exists() and marker.read_text() == json.dumps(DLT_REQUIREMENTS):
        return python
    print(f"[dlt] installing {' '.join(DLT_REQUIREMENTS)} into {DLT_VENV} (once) ...", flush=True)
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(DLT_VENV)], check=True, capture_output=True, text=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *DLT_REQUIREMENTS], check=True, capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        reason = getattr(exc, "stderr", None) or str(exc)
        results.unavailable["dlt"] = str(reason).strip().splitlines()[-1][:200] if str(reason).strip() else repr(exc)
        return None
    marker.write_text(json.dumps(DLT_REQUIREMENTS))
    return python


def run_dlt(workdir: Path, repeat: int, results: Results, csv: bool, python: Path) -> None:
    source = (workdir / "input" / "csv") if csv else landing(workdir, "dlt", repeat)
    out, state = scratch(workdir, "out", "dlt", repeat, csv), scratch(workdir, "state", "dlt", repeat, csv)
    job = [str(python), str(ROOT / "bench" / "dlt_job.py"), "--source", str(source), "--destination", str(out)]
    job += ["--state", str(state), "--format", "csv" if csv else "json", "--glob", "*.csv" if csv else "*.json"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "AUTOLOADER_"))}
    env["RUNTIME__LOG_LEVEL"] = "WARNING"
    for step in ["csv"] if csv else ["first", "noop", "extra"]:
        if step == "extra":
            add_extra_files(workdir, source)
        proc, rss = run_child(job, env)
        if proc.returncode != 0:
            raise RuntimeError(f"dlt run failed (exit {proc.returncode}): {proc.stderr.strip()[-1500:]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results.add(step, "dlt", Step(r["seconds"], rss, r["rows"]))


# ---------------------------------------------------------------------------------------------------------------------
# Spark (optional)


def run_spark(workdir: Path, repeats: int, results: Results, expected: dict[str, int]) -> float:
    """Both Spark paths on one local server, first loads of JSON and CSV; returns the server's start-up seconds."""
    import bench_spark

    manager, url, startup = bench_spark.start_cluster(workdir)
    try:
        for repeat in range(repeats):
            for kind, workload in (("json", "first"), ("csv", "csv")):
                pair = ("spark-product", "spark-stream")
                for system in pair if repeat % 2 == 0 else pair[::-1]:
                    if system == "spark-product":
                        r = bench_spark.run_spark_engine(workdir, kind, url, gen)
                    else:
                        r = bench_spark.run_stream(workdir, kind, url)
                    note = "" if r["status"] == "success" else f"{r['status']}: {r['message']}"
                    results.add(workload, system, Step(r["seconds"], float("nan"), r["records"], note))
    finally:
        manager.stop_all()
    return startup


# ---------------------------------------------------------------------------------------------------------------------
# The table


SYSTEM_LABELS = {
    "api": "product, API (in-process call)",
    "cli": "product, CLI (new process)",
    "floor": "floor: pyarrow + delta-rs",
    "dlt": "dlt filesystem -> delta",
    "spark-product": "product, Spark engine",
    "spark-stream": "Spark availableNow job",
}


def print_table(results: Results, sizes: Sizes, expected: dict[str, int], repeats: int) -> None:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"\npython {sys.version.split()[0]}, {cpus} cpus, load {os.getloadavg()[0]:.1f}, "
        f"medians of {repeats} interleaved repeat(s)"
    )
    header = (
        f"{'workload':<36} {'system':<31} {'median s':>9} {'min s':>7} {'x floor':>8} {'peak RSS MiB':>13} "
        f"{'rows':>10}  check"
    )
    print(header)
    print("-" * len(header))
    systems = [s for s in SYSTEM_LABELS if any(key[1] == s for key in results.steps)]
    for workload in WORKLOADS:
        floor = results.steps.get((workload, "floor"))
        floor_median = statistics.median(s.seconds for s in floor) if floor else None
        for system in systems:
            steps = results.steps.get((workload, system))
            if not steps:
                continue
            median = statistics.median(s.seconds for s in steps)
            ratio = f"{median / floor_median:8.2f}" if floor_median else f"{'-':>8}"
            rss = max(s.rss_mib for s in steps)
            rss_text = f"{rss:13,.0f}" if rss == rss else f"{'n/a':>13}"
            rows = steps[-1].rows
            notes = sorted({s.note for s in steps if s.note})
            check = "OK" if all(s.rows == expected[workload] for s in steps) else f"expected {expected[workload]:,}"
            print(
                f"{sizes.label(workload):<36} {SYSTEM_LABELS[system]:<31} {median:9.3f} "
                f"{min(s.seconds for s in steps):7.3f} {ratio} {rss_text} {rows:10,}  {check}"
                + (f"  ({'; '.join(notes)[:120]})" if notes else "")
            )
    for system, reason in results.unavailable.items():
        print(f"{system}: not available ({reason})")
    print(
        "times: api, floor, dlt and Spark time the load call in a process that has started and imported; cli is the "
        "whole `autoloader run` process.\npeak RSS: the child process's own ru_maxrss (os.wait4); for api and floor, "
        "the VmHWM of the step (reset before it); n/a for Spark (the work runs in the server's JVM)."
    )


# ---------------------------------------------------------------------------------------------------------------------


def run_parent(args: argparse.Namespace) -> int:
    sizes = QUICK if args.quick else DEFAULT
    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="autoloader-compare-")) if temporary else Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    results = Results()
    try:
        expected = generate(workdir, sizes)
        python = None if args.no_dlt else dlt_python(results)
        systems: list[str] = ["api", "cli", "floor"] + (["dlt"] if python is not None else [])
        runners = {"api": run_api, "cli": run_cli, "floor": run_floor}
        for repeat in range(args.repeats):
            order = systems[repeat % len(systems) :] + systems[: repeat % len(systems)]
            for csv in (False, True):
                for system in order:
                    print(f"[run] repeat {repeat + 1}/{args.repeats}: {system} {'csv' if csv else 'json'}", flush=True)
                    if system == "dlt":
                        assert python is not None
                        run_dlt(workdir, repeat, results, csv, python)
                    else:
                        runners[system](workdir, repeat, results, csv)
            for kind in ("landing", "state", "out"):
                shutil.rmtree(workdir / kind, ignore_errors=True)
        if args.spark:
            startup = run_spark(workdir, args.repeats, results, expected)
            print(f"\nlocal Spark Connect server start-up (launch to first answer): {startup:.1f} s")
        print_table(results, sizes, expected, args.repeats)
    finally:
        if temporary and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"work directory kept: {workdir}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-dlt", action="store_true", help="leave dlt out (no virtualenv is made)")
    parser.add_argument("--spark", action="store_true", help="also the product's Spark engine and a Spark job")
    parser.add_argument("--workdir", help="work directory (default: a new temporary one); its input is reused")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    parser.add_argument("--child", choices=["api", "cli-setup", "floor"], help=argparse.SUPPRESS)
    for hidden in ("--source", "--format", "--steps", "--extra", "--table"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        {"api": child_product, "cli-setup": child_cli_setup, "floor": child_floor}[args.child](args)
        return 0
    return run_parent(args)


if __name__ == "__main__":
    sys.exit(main())

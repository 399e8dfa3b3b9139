"""Throughput and memory benchmark of the embedded engine (Arrow readers + delta-rs writer), in process.

Run from the project root:

    .venv/bin/python bench/bench_embedded.py                      # all scenarios, full size (~1.2 GB of input)
    .venv/bin/python bench/bench_embedded.py --files 500 --csv-mb 32   # a quick check
    .venv/bin/python bench/bench_embedded.py --scenario csv --workdir /tmp/al-bench --keep

What it measures, each scenario through the product's own entry point (`Container.runs.run_now`, as the CLI runs it),
with the metadata DB in SQLite and the warehouse on the local disk (the defaults):

  json   10,000 JSON-lines files of ~10 KB each (nested objects, a list, timestamps), loaded by one run.
  noop   a second run over the same folder: nothing new, so it only lists, diffs against the ledger and stops.
  csv    one ~1 GiB CSV file with 12 columns of mixed types (--csv-mb to change the size), loaded by one run.

For every scenario it prints the wall time of the `run_now` call, the time to import the product and to set up
the container and create the ingestion (reported apart), files/s, records/s and MiB/s of input, the peak RSS of the
process that ran the scenario, and the row count read back from the Delta table (a correctness check).

Each scenario runs in a child process of its own (this script re-invoked with `--child`), which reports its peak RSS
from `getrusage(RUSAGE_SELF).ru_maxrss`, so one scenario's memory does not leak into another's figure. The input data
is generated beforehand by yet another child process (`--generate`), so generation counts in no figure either. The
generated input is flushed to disk (os.sync) but stays in the page cache: these are warm-cache numbers. Nothing is
asserted on timings; the targets are printed next to the measured values.

The work directory (a temporary one unless --workdir) holds `input/` (generated data, reused by a later invocation
that asks for the same sizes) and `state/<scenario>/` (metadata DB and warehouse). `noop` reruns the ingestion the
`json` scenario created, so `--scenario noop` on its own runs `json` first unless the --workdir already has its state.
A temporary work directory is deleted at the end unless --keep; a --workdir given on the command line is left in place.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
RESULT_PREFIX = "BENCH_RESULT "
JSON_FILE_BYTES = 10 * 1024
JSON_INGESTION = "bench-json"
CSV_INGESTION = "bench-csv"
CSV_CHUNK_ROWS = 256 * 1024
SEED = 20240501

# (scenario, result key, unit, limit, what is compared); the limits hold for the default sizes.
TARGETS = [
    ("json", "run_seconds", "s", 30.0, "(a) json: run_now wall time (10k files)"),
    ("csv", "peak_rss_mib", "MiB", 1024.0, "(b) csv: peak RSS (1 GiB file)"),
    ("noop", "run_seconds", "s", 1.0, "(c) noop: run_now wall time (10k loaded files)"),
]


# ---------------------------------------------------------------------------------------------------------------------
# Paths and small helpers


def input_dir(workdir: Path, kind: str) -> Path:
    return workdir / "input" / kind


def manifest_path(workdir: Path, kind: str) -> Path:
    return workdir / "input" / f"{kind}.manifest.json"


def state_dir(workdir: Path, scenario: str) -> Path:
    """Metadata DB and warehouse of a scenario; `noop` reuses the state the `json` scenario left."""
    return workdir / "state" / ("json" if scenario == "noop" else scenario)


def read_manifest(workdir: Path, kind: str) -> dict[str, Any] | None:
    path = manifest_path(workdir, kind)
    return json.loads(path.read_text()) if path.exists() else None


def proc_status_mib(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS: now, VmHWM: peak so far), in MiB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def peak_rss_mib() -> float:
    """Peak resident set size of this process; ru_maxrss is in KiB on Linux (bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak / 1024


# ---------------------------------------------------------------------------------------------------------------------
# Data generation (runs in its own process, before the scenarios)

_EVENTS = ["page_view", "click", "add_to_cart", "purchase", "search", "login", "logout", "refund"]
_COUNTRIES = ["DE", "US", "FR", "GB", "NL", "ES", "IT", "PL", "SE", "JP", "BR", "IN", "CA", "AU", "MX", "KR"]
_TIERS = ["free", "silver", "gold", "platinum"]
_OSES = ["ios", "android", "web", "windows", "macos"]
_TAGS = ["promo", "mobile", "returning", "newsletter", "ab_test_b", "vip", "gift"]
_CATEGORIES = ["books", "garden", "toys", "electronics", "fashion", "grocery", "sports", "beauty", "music", "tools"]


def _json_record(rng: random.Random, record_id: int, base_ts: int) -> dict[str, Any]:
    user_id = rng.randrange(1, 1_000_000)
    seconds = base_ts + record_id * 3 + rng.randrange(3)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rng.randrange(1000):03d}Z"
    return {
        "id": record_id,
        "ts": stamp,
        "event_type": rng.choice(_EVENTS),
        "user": {
            "id": user_id,
            "name": f"user-{user_id}",
            "country": rng.choice(_COUNTRIES),
            "tier": rng.choice(_TIERS),
        },
        "amount": round(rng.uniform(0, 500), 2),
        "currency": "EUR",
        "session_id": f"{rng.getrandbits(64):016x}",
        "device": {
            "os": rng.choice(_OSES),
            "app_version": f"{rng.randrange(1, 6)}.{rng.randrange(10)}.{rng.randrange(20)}",
        },
        "page": f"/products/{rng.choice(_CATEGORIES)}/{rng.randrange(100_000)}",
        "tags": rng.sample(_TAGS, rng.randrange(4)),
    }


def generate_json(workdir: Path, files: int) -> dict[str, Any]:
    """`files` JSON-lines files of about JSON_FILE_BYTES each, with unique ids."""
    folder = input_dir(workdir, "json")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = random.Random(SEED)
    base_ts = 1_714_521_600  # 2024-05-01T00:00:00Z
    next_id = 0
    total_bytes = 0
    for index in range(files):
        lines: list[str] = []
        size = 0
        while size < JSON_FILE_BYTES:
            line = json.dumps(_json_record(rng, next_id, base_ts), separators=(",", ":")) + "\n"
            lines.append(line)
            size += len(line)
            next_id += 1
        data = "".join(lines).encode()
        (folder / f"events-{index:06d}.json").write_bytes(data)
        total_bytes += len(data)
    return {"kind": "json", "files": files, "records": next_id, "bytes": total_bytes, "seed": SEED}


def _csv_chunk(start: int, rows: int, seed: int) -> Any:
    """One Arrow table of `rows` generated rows (12 columns), built with vectorised compute only."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def uniform(salt: int) -> Any:
        return pc.random(rows, initializer=seed * 1000 + salt)

    def ints(salt: int, low: int, high: int) -> Any:
        return pc.cast(pc.add(pc.floor(pc.multiply(uniform(salt), float(high - low))), float(low)), pa.int64())

    def pick(salt: int, values: list[str]) -> Any:
        return pa.array(values, pa.string()).take(ints(salt, 0, len(values)))

    ids = pa.array(range(start, start + rows), pa.int64())
    user_id = ints(1, 1, 1_000_000)
    millis = pc.add(pc.multiply(ids, 3_000), ints(2, 0, 3_000))
    event_time = pc.cast(pc.add(millis, 1_714_521_600_000), pa.timestamp("ms", tz="UTC"))
    return pa.table(
        {
            "id": ids,
            "event_time": event_time,
            "user_id": user_id,
            "user_name": pc.binary_join_element_wise("user-", pc.cast(user_id, pa.string()), ""),
            "country": pick(3, _COUNTRIES),
            "event_type": pick(4, _EVENTS),
            "category": pick(5, _CATEGORIES),
            "amount": pc.round(pc.multiply(uniform(6), 500.0), 2),
            "quantity": ints(7, 1, 11),
            "is_premium": pc.less(uniform(8), 0.2),
            "session_id": pc.binary_join_element_wise("s-", pc.cast(ints(9, 0, 2**52), pa.string()), ""),
            "score": pc.round(uniform(10), 4),
        }
    )


def generate_csv(workdir: Path, megabytes: int) -> dict[str, Any]:
    """One CSV file of about `megabytes` MiB, written chunk by chunk with pyarrow.csv."""
    import pyarrow.csv as pcsv

    folder = input_dir(workdir, "csv")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    path = folder / "events.csv"
    target = megabytes * MIB
    write_options = pcsv.WriteOptions(quoting_style="needed")
    sample = io.BytesIO()
    pcsv.write_csv(_csv_chunk(0, 1000, SEED), sample, write_options=write_options)
    per_row = sample.tell() / 1000  # bytes per row, refined from what is written
    rows = 0
    with open(path, "wb") as sink:
        writer = None
        chunk_index = 0
        while sink.tell() < target:
            wanted = max(1, min(CSV_CHUNK_ROWS, round((target - sink.tell()) / per_row)))
            table = _csv_chunk(rows, wanted, SEED + chunk_index)
            if writer is None:
                writer = pcsv.CSVWriter(sink, table.schema, write_options=write_options)
            writer.write_table(table)
            rows += table.num_rows
            chunk_index += 1
            sink.flush()
            per_row = sink.tell() / rows
        if writer is not None:
            writer.close()
    return {"kind": "csv", "files": 1, "records": rows, "bytes": path.stat().st_size, "megabytes": megabytes}


def input_matches(workdir: Path, kind: str, args: argparse.Namespace) -> bool:
    """Whether the work directory already holds generated input of `kind` at the size asked for."""
    manifest = read_manifest(workdir, kind)
    wanted = {"files": args.files} if kind == "json" else {"megabytes": args.csv_mb}
    return manifest is not None and all(manifest.get(k) == v for k, v in wanted.items())


def ensure_input(workdir: Path, kind: str, args: argparse.Namespace) -> None:
    """Generate the input of `kind` in a child process unless the work directory already has it at this size."""
    manifest = read_manifest(workdir, kind)
    if input_matches(workdir, kind, args) and manifest is not None:
        print(f"[gen] {kind}: reusing {manifest['files']:,} file(s), {manifest['bytes'] / MIB:,.1f} MiB", flush=True)
        return
    command = [sys.executable, __file__, "--generate", kind, "--workdir", str(workdir)]
    command += ["--files", str(args.files), "--csv-mb", str(args.csv_mb)]
    print(f"[gen] {kind}: generating in a separate process (not part of any measurement) ...", flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    manifest = read_manifest(workdir, kind)
    assert manifest is not None
    print(
        f"[gen] {kind}: {manifest['files']:,} file(s), {manifest['records']:,} records, "
        f"{manifest['bytes'] / MIB:,.1f} MiB in {time.perf_counter() - started:.1f} s",
        flush=True,
    )


def run_generate(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir)
    manifest = generate_json(workdir, args.files) if args.generate == "json" else generate_csv(workdir, args.csv_mb)
    manifest_path(workdir, args.generate).write_text(json.dumps(manifest))
    return 0


# ---------------------------------------------------------------------------------------------------------------------
# One scenario (runs in its own process)


def _spec(name: str, folder: Path, fmt: dict[str, Any], table: str) -> dict[str, Any]:
    return {
        "name": name,
        "source": {"type": "local", "path": str(folder)},
        "format": fmt,
        "destination": {"catalog": "main", "database": "bench", "table": table},
    }


def run_child(args: argparse.Namespace) -> int:
    """Build the container, run the scenario once with `run_now`, verify the table, print one JSON result line."""
    scenario = args.child
    workdir = Path(args.workdir)
    kind = "csv" if scenario == "csv" else "json"
    manifest = read_manifest(workdir, kind)
    if manifest is None:
        raise SystemExit(f"no generated {kind} input in {workdir}; run the parent script, not --child directly")
    state = state_dir(workdir, scenario)
    if scenario != "noop":
        shutil.rmtree(state, ignore_errors=True)
    elif not (state / "autoloader.db").exists():
        raise SystemExit(f"scenario noop needs the state of a json run in {state}")

    started = time.perf_counter()
    from deltalake import DeltaTable

    from app.bootstrap import build
    from app.settings import Settings
    from core.config import IngestionSpec

    imported = time.perf_counter()
    svc = build(Settings(data_dir=state, secret_key="bench", local_roots=[workdir / "input"], _env_file=None))
    if scenario == "noop":
        ingestion = svc.store.find_ingestion(JSON_INGESTION)
    else:
        fmt: dict[str, Any] = {"type": "json"}
        if kind == "csv":
            fmt = {"type": "csv", "options": {"header": True, "delimiter": ","}}
        name = CSV_INGESTION if kind == "csv" else JSON_INGESTION
        body = _spec(name, input_dir(workdir, kind), fmt, f"{kind}_events")
        ingestion = svc.ingestions.create(IngestionSpec.model_validate(body), activate=True)
    set_up = time.perf_counter()
    rss_before_run = proc_status_mib("VmRSS")
    peak_before_run = peak_rss_mib()

    outcome = svc.runs.run_now(ingestion.name)
    finished = time.perf_counter()
    peak_after_run = peak_rss_mib()

    # Correctness check, outside the timings: the rows the table holds.
    uri = svc.embedded.table_uri(ingestion.spec.destination)
    table_rows = DeltaTable(uri).count()
    svc.close()
    metrics = outcome.metrics
    expected_files = 0 if scenario == "noop" else manifest["files"]
    expected_rows = manifest["records"]
    checks_ok = (
        outcome.status.value == "success"
        and metrics.files_processed == expected_files
        and metrics.records_ingested == (0 if scenario == "noop" else expected_rows)
        and table_rows == expected_rows
    )
    result = {
        "scenario": scenario,
        "status": outcome.status.value,
        "message": outcome.message,
        "errors": [e.message for e in outcome.errors][:5],
        "import_seconds": imported - started,
        "setup_seconds": set_up - imported,
        "run_seconds": finished - set_up,
        "metrics": metrics.as_dict(),
        "input_files": manifest["files"],
        "input_bytes": manifest["bytes"],
        "table_rows": table_rows,
        "expected_rows": expected_rows,
        "checks_ok": checks_ok,
        "rss_before_run_mib": rss_before_run,
        "peak_rss_before_run_mib": peak_before_run,
        "peak_rss_mib": peak_after_run,
        "peak_rss_end_mib": peak_rss_mib(),
    }
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


# ---------------------------------------------------------------------------------------------------------------------
# The parent: generate, run each scenario in a child, report


def run_scenario(workdir: Path, scenario: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", scenario, "--workdir", str(workdir)]
    print(f"\n[run] {scenario}: starting child process ...", flush=True)
    started = time.perf_counter()
    proc = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    process_seconds = time.perf_counter() - started
    result: dict[str, Any] | None = None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
        else:
            print(f"  | {line}")
    if proc.returncode != 0 or result is None:
        raise SystemExit(f"scenario {scenario} failed (exit code {proc.returncode})")
    result["process_seconds"] = process_seconds
    print_scenario(result)
    return result


def _rate(amount: float, seconds: float, width: int, decimals: int) -> str:
    """`amount` per second, right-aligned; "-" when there was nothing to count (the noop run)."""
    if not amount or seconds <= 0:
        return f"{'-':>{width}}"
    return f"{amount / seconds:{width},.{decimals}f}"


def print_scenario(r: dict[str, Any]) -> None:
    m = r["metrics"]
    run = r["run_seconds"]
    mib = m["bytes_read"] / MIB
    check = "OK" if r["checks_ok"] else "MISMATCH"
    lines = [
        f"[run] {r['scenario']}: status={r['status']} ({r['message']})",
        f"  import product modules    {r['import_seconds']:8.2f} s",
        f"  container + ingestion     {r['setup_seconds']:8.2f} s",
        f"  run_now (end to end)      {run:8.2f} s   (pipeline's own duration_seconds: {m['duration_seconds']} s)",
        f"  child process total       {r['process_seconds']:8.2f} s   (incl. interpreter start, imports, check)",
        f"  files loaded              {m['files_processed']:>12,}   {_rate(m['files_processed'], run, 12, 1)} files/s",
        f"  records                   {m['records_ingested']:>12,}   {_rate(m['records_ingested'], run, 12, 0)} rec/s",
        f"  input read                {mib:12,.1f} MiB {_rate(mib, run, 10, 1)} MiB/s",
        f"  written to Delta          {m['bytes_written'] / MIB:12,.1f} MiB in {m['batches_committed']} commit(s)",
        f"  files in source folder    {r['input_files']:>12,}   ({r['input_bytes'] / MIB:,.1f} MiB)",
        f"  RSS before run            {r['rss_before_run_mib']:12,.1f} MiB (after imports and setup)",
        f"  peak RSS (ru_maxrss)      {r['peak_rss_mib']:12,.1f} MiB",
        f"  rows in Delta table       {r['table_rows']:>12,}   expected {r['expected_rows']:,} -> {check}",
    ]
    if r["errors"]:
        lines.append(f"  errors: {r['errors']}")
    print("\n".join(lines), flush=True)


def print_summary(results: dict[str, dict[str, Any]]) -> None:
    header = (
        f"{'scenario':<8} {'setup s':>8} {'run s':>8} {'files/s':>10} {'records/s':>11} {'MiB/s':>8} "
        f"{'peak RSS MiB':>13} {'table rows':>12} {'check':>6}"
    )
    print("\n=== Summary (embedded engine; run s = the run_now call) ===")
    print(header)
    print("-" * len(header))
    for name in ("json", "noop", "csv"):
        r = results.get(name)
        if r is None:
            continue
        m, run = r["metrics"], r["run_seconds"]
        print(
            f"{name:<8} {r['setup_seconds']:8.2f} {run:8.2f} {_rate(m['files_processed'], run, 10, 1)} "
            f"{_rate(m['records_ingested'], run, 11, 0)} {_rate(m['bytes_read'] / MIB, run, 8, 1)} "
            f"{r['peak_rss_mib']:13,.1f} {r['table_rows']:12,} {'OK' if r['checks_ok'] else 'FAIL':>6}"
        )
    print("\n=== Targets ===")
    print(f"{'':<48} {'measured':>14} {'target':>12}")
    for scenario, key, unit, limit, label in TARGETS:
        r = results.get(scenario)
        if r is None:
            continue
        value = r[key]
        verdict = "met" if value < limit else "MISSED"
        print(f"{label:<48} {value:10,.2f} {unit:<3} {'< ' + f'{limit:g} {unit}':>12}  {verdict}")


def run_parent(args: argparse.Namespace) -> int:
    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="autoloader-bench-")) if temporary else Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    scenarios = ["json", "noop", "csv"] if args.scenario == "all" else [args.scenario]
    json_state = (state_dir(workdir, "noop") / "autoloader.db").exists()
    if scenarios == ["noop"] and not (json_state and input_matches(workdir, "json", args)):
        print("[run] noop needs the state of a json run over the same files: running json first", flush=True)
        scenarios = ["json", "noop"]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"workdir: {workdir}   python: {sys.version.split()[0]}   cpus: {cpus}", flush=True)
    print("Input data is generated by separate processes first, so it counts in no timing or RSS figure.", flush=True)
    try:
        for kind in ("json", "csv"):
            if any((s == "csv") == (kind == "csv") for s in scenarios):
                ensure_input(workdir, kind, args)
        os.sync()  # flush the generated data to disk now, so write-back does not slow down a measured run
        results = {name: run_scenario(workdir, name) for name in scenarios}
        print_summary(results)
    finally:
        if temporary and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"\nwork directory kept: {workdir}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scenario", choices=["all", "json", "csv", "noop"], default="all")
    parser.add_argument("--files", type=int, default=10_000, help="JSON files for scenarios json/noop")
    parser.add_argument("--csv-mb", type=int, default=1024, help="size of the CSV file in MiB")
    parser.add_argument("--workdir", help="work directory (default: a new temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    parser.add_argument("--child", choices=["json", "csv", "noop"], help=argparse.SUPPRESS)
    parser.add_argument("--generate", choices=["json", "csv"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if (args.child or args.generate) and not args.workdir:
        parser.error("--child and --generate need --workdir")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.generate:
        return run_generate(args)
    if args.child:
        return run_child(args)
    return run_parent(args)


if __name__ == "__main__":
    sys.exit(main())

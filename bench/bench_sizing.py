"""Sizing: MiB/s, and MiB/s per core, of loading JSON, CSV and Parquet into a Delta table on each engine.

    .venv/bin/python bench/bench_sizing.py                                  # 512 MiB per format, every engine
    .venv/bin/python bench/bench_sizing.py --mb 64 --file-mb 16 --engines embedded,spark-local
    .venv/bin/python bench/bench_sizing.py --engines spark-standalone --big-gb 10 --workdir /tmp/al-sizing --keep

Engines (each started once, before its runs; the start-up time is printed and counts in no rate):
  embedded          the product's embedded engine (Arrow + delta-rs), in this process; cores = os.cpu_count()
  spark-local       the product's local Spark Connect server (bench_spark.start_server, Delta); cores = the N of
                    its master local[N] (app/local_spark.py)
  spark-standalone  a standalone master and 2 workers of 1 core each, their Connect server's driver on the same
                    machine (tests/spark_standalone.py); cores = the workers' cores (the driver's are not counted)

Input, per format (json: JSON lines; csv: with a header; parquet): --mb MiB of flat event rows (bench_embedded.py's
12-column generator, with the timestamp as ISO text) in files of --file-mb MiB, so Spark reads them in parallel.
Generated with a fixed seed before anything runs (not timed), flushed to disk (os.sync; warm page cache), and
reused from --workdir when its manifest says the same sizes. `--big-gb N` adds N GiB of --big-format (default
parquet) loaded once on the standalone cluster (N=10: the 10 GB run).

Each load is one product run through the service layer, as bench_spark.run_spark_engine does it: a new metadata
store and data dir (deleted afterwards), the Spark server registered as a cluster (ClusterCreate), the ingestion
created from an IngestionSpec over the local folder, then `runs.run_now`. Only `run_now` is timed; the set-up, the
check (status success and records_ingested equal to the rows generated) and dropping the Spark table are not.
Before the timed runs, each engine loads a ~1 MiB file of every format once (a warm-up, not timed: a long-running
server has its reader classes loaded). --repeat N takes the median of N runs.

It then prints, per engine, the cores a day of 100 GB, 1 TB and 10 TB needs at the per-core rate of its slowest
format, with the day's data arriving at a peak of PEAK_FACTOR times its average rate and scaling taken as linear.
The Spark jars come from $AUTOLOADER_SPARK_JARS, by default the tests' cache (~/.cache/autoloader-tests/spark-jars).
"""

from __future__ import annotations

import argparse
import atexit
import importlib.metadata
import json
import math
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # app, core and tests; bench/ is the script's folder

import bench_embedded  # its row generator, _spec and constants
import bench_spark  # its Server, start_server and median_of

MIB = bench_embedded.MIB
SEED = bench_embedded.SEED
GENERATOR_VERSION = 1
CHUNK_ROWS = 128 * 1024
SAMPLE_ROWS = 8192
WARM_MB = 1
ENGINES = ("embedded", "spark-local", "spark-standalone")
FORMATS: dict[str, dict[str, Any]] = {
    "json": {"type": "json"},
    "csv": {"type": "csv", "options": {"header": True, "delimiter": ","}},
    "parquet": {"type": "parquet"},
}
SUFFIXES = {"json": ".json", "csv": ".csv", "parquet": ".parquet"}
PEAK_FACTOR = 3.0
SECONDS_PER_DAY = 86_400
DAYS = [("100 GB", 100 * 10**9), ("1 TB", 10**12), ("10 TB", 10**13)]


@dataclass
class Target:
    """An engine ready to run: its name, the cores its rate is divided by, its Spark server (None: embedded)."""

    name: str
    cores: int
    server: bench_spark.Server | None = None


# ---------------------------------------------------------------------------------------------------------------------
# Input generation (not timed)


def rows_table(start: int, rows: int) -> Any:
    """`rows` event rows with ids from `start`: bench_embedded's 12 columns, the timestamp as ISO-8601 text."""
    import pyarrow.compute as pc

    table = bench_embedded._csv_chunk(start, rows, SEED + start)
    iso = pc.strftime(table["event_time"], format="%Y-%m-%dT%H:%M:%SZ")  # e.g. 2024-05-01T00:00:03.120Z
    return table.set_column(table.schema.get_field_index("event_time"), "event_time", iso)


def json_value(column: Any) -> Any:
    """A column as JSON text; the generated strings need no escaping, and a double always keeps its decimal point."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(column.type):
        return pc.binary_join_element_wise('"', column, '"', "")
    text = pc.cast(column, pa.string())
    if pa.types.is_floating(column.type):
        return pc.if_else(pc.match_substring(text, "."), text, pc.binary_join_element_wise(text, ".0", ""))
    return text


def write_json_lines(sink: Any, table: Any) -> None:
    """One JSON object per row, built with Arrow compute; the lines are the data buffer of the joined strings."""
    import pyarrow as pa
    import pyarrow.compute as pc

    pieces: list[Any] = []
    for index, name in enumerate(table.column_names):
        pieces += [("{" if index == 0 else ",") + f'"{name}":', json_value(table[name])]
    lines = pc.binary_join_element_wise(*pieces, "}\n", "")
    for chunk in getattr(lines, "chunks", [lines]):
        if len(chunk):
            _, offset_buffer, data = chunk.buffers()
            offsets = pa.Array.from_buffers(pa.int32(), len(chunk) + 1, [None, offset_buffer], offset=chunk.offset)
            first, last = offsets[0].as_py(), offsets[-1].as_py()
            sink.write(data.slice(first, last - first))


def write_file(fmt: str, path: Path, start: int, rows: int) -> int:
    """Write rows start..start+rows-1 to one file of `fmt`, chunk by chunk; returns its size in bytes."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    chunks = (rows_table(s, min(CHUNK_ROWS, start + rows - s)) for s in range(start, start + rows, CHUNK_ROWS))
    if fmt == "json":
        with open(path, "wb") as sink:
            for table in chunks:
                write_json_lines(sink, table)
        return path.stat().st_size
    schema = rows_table(0, 1).schema
    if fmt == "csv":
        writer: Any = pcsv.CSVWriter(str(path), schema, write_options=pcsv.WriteOptions(quoting_style="needed"))
    else:
        writer = pq.ParquetWriter(str(path), schema)
    for table in chunks:
        writer.write_table(table)
    writer.close()
    return path.stat().st_size


def bytes_per_row(fmt: str, folder: Path) -> float:
    sample = folder / f".sample{SUFFIXES[fmt]}"
    size = write_file(fmt, sample, 0, SAMPLE_ROWS)
    sample.unlink()
    return size / SAMPLE_ROWS


def ensure_input(workdir: Path, name: str, fmt: str, mb: int, file_mb: int) -> dict[str, Any]:
    """`mb` MiB of `fmt` in files of about `file_mb` MiB under input/<name>, unless its manifest says so already."""
    folder = workdir / "input" / name
    manifest_file = workdir / "input" / f"{name}.manifest.json"
    wanted = {"format": fmt, "mb": mb, "file_mb": file_mb, "seed": SEED, "version": GENERATOR_VERSION}
    if manifest_file.exists():
        manifest = json.loads(manifest_file.read_text())
        if all(manifest.get(k) == v for k, v in wanted.items()) and folder.is_dir():
            print(f"[gen] {name}: reusing {manifest['files']} file(s), {manifest['bytes'] / MIB:,.1f} MiB", flush=True)
            return manifest | {"folder": str(folder)}
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    target, files = mb * MIB, max(1, math.ceil(mb / file_mb))
    per_row, total, rows = bytes_per_row(fmt, folder), 0, 0
    for index in range(files):
        count = max(1, round((target - total) / (files - index) / per_row))  # the rest, spread over the files left
        total += write_file(fmt, folder / f"part-{index:05d}{SUFFIXES[fmt]}", rows, count)
        rows += count
        per_row = total / rows
    manifest = wanted | {"files": files, "records": rows, "bytes": total}
    manifest_file.write_text(json.dumps(manifest))
    seconds = time.perf_counter() - started
    print(f"[gen] {name}: {files} file(s), {rows:,} records, {total / MIB:,.1f} MiB in {seconds:.1f} s", flush=True)
    return manifest | {"folder": str(folder)}


# ---------------------------------------------------------------------------------------------------------------------
# Engines


def local_cores(master: str) -> int:
    """The cores of a `local`, `local[N]` or `local[*]` master."""
    found = re.fullmatch(r"local(?:\[(\d+|\*)(?:,\d+)?\])?", master)
    if found is None:
        raise ValueError(f"not a local master: {master}")
    if found.group(1) is None:
        return 1
    return (os.cpu_count() or 1) if found.group(1) == "*" else int(found.group(1))


def registered_cores(master_log: Path, fallback: int) -> int:
    """The cores the standalone master's workers registered with (its log), else `fallback`."""
    text = master_log.read_text(errors="replace") if master_log.exists() else ""
    cores = [int(n) for n in re.findall(r"Registering worker \S+ with (\d+) cores", text)]
    return sum(cores) or fallback


def _remove(paths: list[Path]) -> None:
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def engine(name: str, workdir: Path) -> Iterator[Target]:
    """Start engine `name` and stop it afterwards."""
    if name == "embedded":
        yield Target(name, os.cpu_count() or 1)
    elif name == "spark-local":
        root = workdir / "servers"
        server = bench_spark.start_server(root, "delta")
        print(f"[{name}] server up in {server.startup_seconds:.1f} s ({server.manager.master})", flush=True)
        try:
            yield Target(name, local_cores(server.manager.master), server)
        finally:
            server.stop()
            shutil.rmtree(root, ignore_errors=True)
    else:
        from tests.spark_standalone import WORKERS, standalone_cluster

        roots: list[Path] = []
        atexit.register(_remove, roots)  # runs after the cluster's own atexit handlers (registered later) stop it
        started = time.perf_counter()
        cluster = standalone_cluster(settings_of_tests=False)  # Spark's and the JVM's defaults, as a user's cluster
        roots.append(cluster.server.root)
        print(f"[{name}] master, workers and server up in {time.perf_counter() - started:.1f} s", flush=True)
        server = bench_spark.Server(None, cluster.server.url, cluster.server.token, "spark_catalog", 0.0)
        try:
            yield Target(name, registered_cores(cluster.server.root / "master.log", WORKERS), server)
        finally:
            cluster.stop()  # the master and workers; its Connect server stops at exit


# ---------------------------------------------------------------------------------------------------------------------
# One product run


def drop_table(server: bench_spark.Server, table: str) -> None:
    """Drop the run's managed table from the Spark catalog (its files with it), so the disk does not fill up."""
    try:
        spark = server.session()
        try:
            spark.sql(f"DROP TABLE IF EXISTS {server.catalog}.bench.{table}").collect()
        finally:
            spark.stop()
    except Exception as exc:
        print(f"    (could not drop {table}: {exc})", flush=True)


def run_once(workdir: Path, target: Target, fmt: str, data: dict[str, Any]) -> dict[str, Any]:
    """One `run_now` of a new ingestion of `data`'s folder on `target` (bench_spark.run_product), timed; then checked,
    and its Spark table dropped."""
    table = f"sizing_{fmt}_{time.time_ns()}"
    body = bench_embedded._spec(f"sizing-{fmt}", Path(data["folder"]), FORMATS[fmt], table)
    try:
        r = bench_spark.run_product(workdir, body, target.server)
    finally:
        if target.server is not None:
            drop_table(target.server, table)
    if r["status"] == "success" and r["records"] != data["records"]:
        r["status"] = "mismatch"
    return r


def report_run(label: str, r: dict[str, Any], expected: int) -> None:
    if r["status"] == "success":
        print(f"    {label}: {r['seconds']:.2f} s, {r['records']:,} records", flush=True)
    else:
        print(
            f"!!  {label}: status {r['status']}, {r['records']:,} of {expected:,} records loaded "
            f"in {r['seconds']:.2f} s: {r['message']}",
            flush=True,
        )


def measure(workdir: Path, target: Target, inputs: dict[str, Any], warm: dict[str, Any], repeat: int) -> list[dict]:
    """Warm the engine up on every format, then `repeat` timed runs per format; one median row per format."""
    for fmt, data in warm.items():
        report_run(f"[{target.name}] {fmt} warm-up (not timed)", run_once(workdir, target, fmt, data), data["records"])
    rows = []
    for fmt, data in inputs.items():
        runs = []
        for i in range(repeat):
            runs.append(run_once(workdir, target, fmt, data))
            report_run(f"[{target.name}] {fmt} run {i + 1}", runs[-1], data["records"])
        summary = bench_spark.median_of(runs)
        rows.append(summary | {"engine": target.name, "format": fmt, "bytes": data["bytes"], "cores": target.cores})
    return rows


# ---------------------------------------------------------------------------------------------------------------------
# Report


def rates(r: dict[str, Any]) -> tuple[float, float, float]:
    """(MiB, MiB/s, MiB/s per core) of a result row."""
    mib = r["bytes"] / MIB
    per_second = mib / r["seconds"] if r["seconds"] else 0.0
    return mib, per_second, per_second / r["cores"]


def print_results(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'engine':<16} {'format':<8} {'MiB':>9} {'seconds':>9} {'runs s':>13} {'MiB/s':>8} {'cores':>5} "
        f"{'MiB/s/core':>10} {'records':>13} status"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for r in rows:
        mib, per_second, per_core = rates(r)
        print(
            f"{r['engine']:<16} {r['format']:<8} {mib:9,.1f} {r['seconds']:9.2f} {r['spread']:>13} {per_second:8.1f} "
            f"{r['cores']:5d} {per_core:10.2f} {r['records']:13,} {r['status']}"
        )
    print("(seconds: the run_now call, median of the runs; MiB = 2^20 bytes of input files)")


def print_sizing(rows: list[dict[str, Any]]) -> None:
    print(
        f"\nSizing. Assumed: a day's data arrives at a peak of {PEAK_FACTOR:g}x its average rate (average = bytes / "
        f"{SECONDS_PER_DAY:,} s),\nand throughput scales linearly with cores. cores = ceil(peak MiB/s / MiB/s per "
        "core of the engine's slowest format).\nThe rates include each run's fixed cost (planning, commit), so a "
        "small --mb understates them. GB and TB are decimal (10^9, 10^12 bytes)."
    )
    for label, size in DAYS:
        average = size / MIB / SECONDS_PER_DAY
        print(f"  {label}/day: average {average:,.2f} MiB/s, peak {average * PEAK_FACTOR:,.2f} MiB/s")
    header = f"{'engine':<16} {'slowest':<8} {'MiB/s/core':>10} " + " ".join(f"{d + '/day':>12}" for d, _ in DAYS)
    print(header + "\n" + "-" * len(header))
    for name in ENGINES:
        ok = [r for r in rows if r["engine"] == name and r["status"] == "success" and r["seconds"] > 0]
        if not ok:
            if any(r["engine"] == name for r in rows):
                print(f"{name:<16} no successful run")
            continue
        slowest = min(ok, key=lambda r: rates(r)[2])
        per_core = rates(slowest)[2]
        cores = [math.ceil(size / MIB / SECONDS_PER_DAY * PEAK_FACTOR / per_core) for _, size in DAYS]
        print(f"{name:<16} {slowest['format']:<8} {per_core:10.2f} " + " ".join(f"{c:>6,} cores" for c in cores))


def print_big(r: dict[str, Any]) -> None:
    mib, per_second, per_core = rates(r)
    print(
        f"\nBig {r['format']} input on spark-standalone: {mib:,.0f} MiB in {r['seconds']:.1f} s "
        f"= {per_second:.1f} MiB/s, {per_core:.2f} MiB/s per core ({r['cores']} cores), "
        f"{r['records']:,} records, {r['status']}"
    )


def machine_facts() -> str:
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f"{pages / 1024**3:.1f} GiB"
    except (ValueError, OSError):
        memory = "unknown"
    try:
        pyspark = importlib.metadata.version("pyspark")
    except importlib.metadata.PackageNotFoundError:
        pyspark = "not installed"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"machine: {os.cpu_count()} cpus ({usable} usable), {memory} memory, {platform.platform()}; "
        f"python {platform.python_version()}, pyspark {pyspark}"
    )


# ---------------------------------------------------------------------------------------------------------------------
# Main


def prepare_inputs(workdir: Path, args: argparse.Namespace, formats: list[str]) -> tuple[dict, dict, dict | None]:
    """(inputs, warm-up inputs, big CSV or None) for the formats asked for, generated or reused; flushed to disk."""
    inputs = {fmt: ensure_input(workdir, fmt, fmt, args.mb, args.file_mb) for fmt in formats}
    warm = {fmt: ensure_input(workdir, f"warm-{fmt}", fmt, WARM_MB, WARM_MB) for fmt in formats}
    kind = args.big_format
    big = ensure_input(workdir, f"big-{kind}", kind, args.big_gb * 1024, args.file_mb) if args.big_gb else None
    os.sync()  # write the input back now, so that write-back does not slow down a timed run
    return inputs, warm, big


def run_engines(workdir: Path, args: argparse.Namespace, engines: list[str], formats: list[str]) -> None:
    inputs, warm, big = prepare_inputs(workdir, args, formats)
    rows: list[dict[str, Any]] = []
    big_row = None
    needed = [e for e in ENGINES if e in engines or (e == "spark-standalone" and big is not None)]
    for name in needed:
        print(f"\n[{name}] starting ...", flush=True)
        try:
            with engine(name, workdir) as target:
                if name in engines:
                    rows += measure(workdir, target, inputs, warm, args.repeat)
                if name == "spark-standalone" and big is not None:
                    kind = args.big_format
                    r = run_once(workdir, target, kind, big)
                    report_run(f"[{name}] big {kind}", r, big["records"])
                    big_row = r | {"engine": name, "format": kind, "bytes": big["bytes"], "cores": target.cores}
        except Exception as exc:
            print(f"!!  [{name}] stopped by an error: {type(exc).__name__}: {exc}", flush=True)
    print_results(rows)
    if big_row is not None:
        print_big(big_row)
    print_sizing(rows)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma list of: " + ", ".join(ENGINES))
    parser.add_argument("--formats", default=",".join(FORMATS), help="comma list of: " + ", ".join(FORMATS))
    parser.add_argument("--mb", type=int, default=512, help="MiB of input per format")
    parser.add_argument("--file-mb", type=int, default=64, help="MiB per input file")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per engine and format (median)")
    parser.add_argument("--big-gb", type=int, default=0, help="GiB loaded once on spark-standalone (0: off)")
    parser.add_argument("--big-format", choices=list(FORMATS), default="parquet", help="format of the --big-gb input")
    parser.add_argument("--workdir", help="work directory (default: a new temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    args = parser.parse_args(argv)
    args.engine_list = [e.strip() for e in args.engines.split(",") if e.strip()]
    args.format_list = [f.strip() for f in args.formats.split(",") if f.strip()]
    for value, known in ((args.engine_list, ENGINES), (args.format_list, tuple(FORMATS))):
        if unknown := sorted(set(value) - set(known)):
            parser.error(f"unknown: {', '.join(unknown)} (known: {', '.join(known)})")
    if args.mb < 1 or args.file_mb < 1 or args.repeat < 1 or args.big_gb < 0:
        parser.error("--mb, --file-mb and --repeat must be at least 1, --big-gb at least 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from tests.spark_server import jar_cache

    os.environ.setdefault("AUTOLOADER_SPARK_JARS", str(jar_cache()))
    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="autoloader-sizing-")) if temporary else Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    print(machine_facts())
    print(f"workdir: {workdir}   spark jars: {os.environ['AUTOLOADER_SPARK_JARS']}", flush=True)
    try:
        run_engines(workdir, args, args.engine_list, args.format_list)
    finally:
        shutil.rmtree(workdir / "state", ignore_errors=True)
        if temporary and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"\nwork directory kept: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

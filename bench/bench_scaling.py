"""How the product's cost grows with the number of files (issue #14: linear in new files, flat in loaded ones).

    .venv/bin/python bench/bench_scaling.py                    # 1,000 → 10,000 → 50,000 → 100,000 small files
    .venv/bin/python bench/bench_scaling.py --max-files 10000  # stop at 10,000
    .venv/bin/python bench/bench_scaling.py --max-files 10000 --profile /tmp/al-prof   # + cProfile dumps

For each size N (1k, 10k, 50k, 100k up to --max-files), N JSON-lines files of --rows flat records (compare.py's
generator, fixed seed) land in a folder of their own; a child process builds the product (`build`, as a server) and
times `run_now` calls on one ingestion: the first load of the N files, then --noop-runs runs with nothing new (the
ledger diff over N loaded files; their median is printed, with the fastest and slowest). Printed per size: both
times, files/s of the first load, the peak RSS of the child; then the growth exponent k of time ≈ c·N^k fitted by
least squares on log-log (k = 1 is linear; k = 0 flat), for each pair of neighbouring sizes and over all of them.
Nothing is asserted.

With --profile DIR each child also writes DIR/first-N.prof and DIR/noop-N.prof (cProfile; read them with
`python -m pstats`), and prints the top functions of both by cumulative time.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_embedded as memory  # peak RSS of the child
import compare  # the flat-record generator and the child's environment

SIZES = (1_000, 10_000, 50_000, 100_000)  # issue #14: 50,000 files within 5.5x the 10,000-file time
RESULT_PREFIX = "SCALING_RESULT "
SEED = 20261201


def ensure_files(workdir: Path, count: int, rows: int) -> Path:
    folder = workdir / "input" / f"files-{count}"
    marker = folder.with_suffix(".done")
    if marker.exists() and marker.read_text() == f"{rows}":
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    print(f"[gen] {count:,} files of {rows} rows ...", flush=True)
    compare.write_json_files(folder, "part", count, rows, 0, random.Random(SEED))
    marker.write_text(f"{rows}")
    return folder


def child(args: argparse.Namespace) -> int:
    """Build, create the ingestion (untimed), time the first load and the no-op run."""
    from app.bootstrap import build
    from app.settings import Settings
    from core.config import IngestionSpec

    svc = build(Settings(_env_file=None))
    try:
        body = compare.gen._spec("scaling", Path(args.source), {"type": "json"}, "events")
        if args.batch_files:
            body["limits"] = {"max_files_per_batch": args.batch_files}
        ingestion = svc.ingestions.create(IngestionSpec.model_validate(body), activate=True)
        result: dict[str, Any] = {"files": args.files}
        noop_times: list[float] = []
        for step in ("first", *("noop",) * args.noop_runs):
            profile = None
            if args.profile:
                import cProfile

                profile = cProfile.Profile()
                profile.enable()
            started = time.perf_counter()
            outcome = svc.runs.run_now(ingestion.name)
            result[f"{step}_seconds"] = time.perf_counter() - started
            if step == "noop":
                noop_times.append(result["noop_seconds"])
            if profile is not None:
                profile.disable()
                dump = Path(args.profile) / f"{step}-{args.files}.prof"
                profile.dump_stats(dump)
                print_top(dump, f"{step}, {args.files:,} files")
            result[f"{step}_status"] = outcome.status.value
            result[f"{step}_loaded"] = result.get(f"{step}_loaded", 0) + outcome.metrics.files_processed
        result["noop_seconds"] = statistics.median(noop_times)
        result["noop_range"] = [min(noop_times), max(noop_times)]
        result["peak_rss_mib"] = memory.peak_rss_mib()
        print(RESULT_PREFIX + json.dumps(result), flush=True)
    finally:
        svc.close()
    return 0


def print_top(dump: Path, title: str, count: int = 25) -> None:
    import io
    import pstats

    out = io.StringIO()
    pstats.Stats(str(dump), stream=out).sort_stats("cumulative").print_stats(count)
    print(f"\n--- cProfile: {title} (top {count} by cumulative time) ---")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[-4000:], flush=True)


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of log(seconds) over log(files)."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(max(s, 1e-6)) for _, s in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    return covariance / sum((x - mean_x) ** 2 for x in xs)


def run_size(workdir: Path, count: int, args: argparse.Namespace) -> dict[str, Any]:
    rows, profile, batch_files = args.rows, args.profile, args.batch_files
    source = ensure_files(workdir, count, rows)
    state = workdir / "state" / f"files-{count}"
    shutil.rmtree(state, ignore_errors=True)
    command = [sys.executable, __file__, "--child", "--source", str(source), "--files", str(count)]
    if profile:
        command += ["--profile", profile]
    if batch_files:
        command += ["--batch-files", str(batch_files)]
    command += ["--noop-runs", str(args.noop_runs)]
    print(f"[run] {count:,} files ...", flush=True)
    proc = subprocess.run(command, env=compare.product_env(workdir, state), stdout=subprocess.PIPE, text=True)
    found = [
        json.loads(line[len(RESULT_PREFIX) :]) for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)
    ]
    for line in proc.stdout.splitlines():
        if not line.startswith(RESULT_PREFIX):
            print(line)
    if proc.returncode != 0 or not found:
        raise SystemExit(f"the run over {count:,} files failed (exit {proc.returncode})")
    shutil.rmtree(state, ignore_errors=True)
    return found[0]


def print_summary(results: list[dict[str, Any]], rows: int) -> None:
    print(f"\npython {sys.version.split()[0]}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}, {rows} rows/file")
    print(
        f"{'files':>9} {'first load s':>13} {'files/s':>9} {'no-op s':>9} {'(fastest-slowest)':>17} "
        f"{'peak RSS MiB':>13}  status"
    )
    for r in results:
        ok = r["first_status"] == "success" and r["first_loaded"] == r["files"] and r["noop_loaded"] == 0
        print(
            f"{r['files']:9,} {r['first_seconds']:13.2f} {r['files'] / r['first_seconds']:9,.0f} "
            f"{r['noop_seconds']:9.3f} {r['noop_range'][0]:8.3f}-{r['noop_range'][1]:.3f} "
            f"{r['peak_rss_mib']:13,.0f}  {'OK' if ok else 'CHECK: ' + json.dumps(r)}"
        )
    if len(results) < 2:
        return
    print("\ngrowth exponent k (time ~ files^k; 1 = linear, 0 = flat):")
    for step in ("first", "noop"):
        points = [(r["files"], r[f"{step}_seconds"]) for r in results]
        pairs = ", ".join(f"{a[0]:,}->{b[0]:,}: {slope([a, b]):.2f}" for a, b in itertools.pairwise(points))
        print(f"  {'first load' if step == 'first' else 'no-op':<10} all sizes: {slope(points):.2f}   ({pairs})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--max-files", type=int, default=SIZES[-1], help="largest size (10000: stop at 10k)")
    parser.add_argument("--min-files", type=int, default=SIZES[0], help="smallest size (100000: only 100k)")
    parser.add_argument("--rows", type=int, default=5, help="records per file")
    parser.add_argument("--noop-runs", type=int, default=3, help="no-op runs after the first load (median printed)")
    parser.add_argument("--workdir", help="work directory (default: a new temporary one); its input is reused")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    parser.add_argument("--profile", help="write cProfile dumps of each run into this folder")
    parser.add_argument(
        "--batch-files", type=int, help="limits.max_files_per_batch (default 10,000): smaller shows many-batch cost"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--files", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="autoloader-scaling-")) if temporary else Path(args.workdir).resolve()
    (workdir / "landing").mkdir(parents=True, exist_ok=True)  # a local root compare.product_env names
    try:
        results = [run_size(workdir, n, args) for n in SIZES if args.min_files <= n <= args.max_files]
        print_summary(results, args.rows)
    finally:
        if temporary and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

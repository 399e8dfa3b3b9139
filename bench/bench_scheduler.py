"""Scheduler benchmarks (issue 6).

    .venv/bin/python bench/bench_scheduler.py [--fires 50] [--idle-ingestions 1000] [--idle-seconds 60]

1. Scheduling latency: continuous ingestions (every 5 s, several at once) in-process with the real
   scheduler and SQLite; for each fire, run.started_at - run.scheduled_for. Prints median and p95
   over at least --fires fires.
2. Idle cost: a real `autoloader serve` process whose database holds --idle-ingestions active hourly
   ingestions; CPU (from /proc/<pid>/stat) and RSS sampled over --idle-seconds after start-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.access import SYSTEM

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.bootstrap import build
from app.settings import Settings
from core.config import IngestionSpec

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _spec(name: str, folder: Path, schedule: dict[str, object]) -> IngestionSpec:
    return IngestionSpec.model_validate(
        {
            "name": name,
            "source": {"type": "local", "path": str(folder)},
            "format": {"type": "json"},
            "destination": {"catalog": "main", "database": "bench", "table": name.replace("-", "_")},
            "schedule": schedule,
        }
    )


def latency(workdir: Path, fires: int) -> None:
    folder = workdir / "empty"
    folder.mkdir()
    svc = build(Settings(data_dir=workdir / "latency", secret_key="bench", local_roots=[folder]))
    svc.start()
    ingestions = [
        svc.ingestions.create(_spec(f"lat-{i}", folder, {"mode": "continuous", "interval_seconds": 5}), activate=True)
        for i in range(10)
    ]
    seconds = fires / len(ingestions) * 5 + 6
    print(f"[latency] {len(ingestions)} continuous ingestions every 5 s, waiting {seconds:.0f} s ...")
    time.sleep(seconds)
    svc.close()
    delays = []
    for ingestion in ingestions:
        for run in svc.views.runs(SYSTEM, ingestion.id):
            if run.scheduled_for and run.started_at:
                delays.append((run.started_at - run.scheduled_for).total_seconds())
    delays.sort()
    print(f"[latency] fires measured: {len(delays)}")
    print(
        f"[latency] scheduled fire → run started: median {statistics.median(delays) * 1000:.1f} ms, "
        f"p95 {delays[int(len(delays) * 0.95) - 1] * 1000:.1f} ms, max {delays[-1] * 1000:.1f} ms "
        "(target: median < 1 s)"
    )


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def idle(workdir: Path, count: int, seconds: int) -> None:
    data = workdir / "idle"
    folder = workdir / "idle-src"
    folder.mkdir()
    svc = build(Settings(data_dir=data, secret_key="bench", local_roots=[folder]))
    started = time.monotonic()
    for i in range(count):
        schedule = {"mode": "scheduled", "frequency": "hourly", "minute": i % 60}
        svc.ingestions.create(_spec(f"idle-{i:04d}", folder, schedule), activate=True)
    svc.close()
    print(f"[idle] created {count} active hourly ingestions in {time.monotonic() - started:.1f} s")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env |= {"AUTOLOADER_DATA_DIR": str(data), "AUTOLOADER_SECRET_KEY": "bench", "AUTOLOADER_PORT": "18765"}
    env["AUTOLOADER_LOCAL_ROOTS"] = str(folder)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(15)  # start-up: migrations, 1,000 jobs, first refresh
        cpu0, t0 = _cpu_seconds(proc.pid), time.monotonic()
        peak = 0.0
        while time.monotonic() - t0 < seconds:
            time.sleep(1)
            peak = max(peak, _rss_mb(proc.pid))
        cpu = (_cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0) * 100
        print(
            f"[idle] over {seconds} s: CPU {cpu:.2f}% of one core (target < 2%), "
            f"RSS now {_rss_mb(proc.pid):.0f} MB, peak {peak:.0f} MB (target < 300 MB)"
        )
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fires", type=int, default=50)
    parser.add_argument("--idle-ingestions", type=int, default=1000)
    parser.add_argument("--idle-seconds", type=int, default=60)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-idle", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autoloader-sched-bench-") as tmp:
        if not args.skip_latency:
            latency(Path(tmp), args.fires)
        if not args.skip_idle:
            idle(Path(tmp), args.idle_ingestions, args.idle_seconds)


if __name__ == "__main__":
    main()

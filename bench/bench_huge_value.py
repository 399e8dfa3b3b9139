"""One huge value (default 100 MB) in one JSON string field and in one CSV field, loaded by a CLI run on the embedded
engine: the run's peak RSS (getrusage of the child), its seconds, the Parquet footer size of the table's data file,
and whether pyarrow reads the table back with the value exact.

Run from the project root:

    .venv/bin/python bench/bench_huge_value.py              # 100 MB
    .venv/bin/python bench/bench_huge_value.py --mb 20

Each format is one ingestion (SQLite metadata, local warehouse, in a temporary folder). The value is base64 text of
random bytes, so compression does not shrink it away.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent


@dataclass(slots=True)
class Measured:
    format: str
    value_mb: float
    status: str
    rss_mb: float
    seconds: float
    footer_mb: float
    readable: str
    huge_first: bool = False


def huge_text(megabytes: float, seed: int = 12, line_break: bool = False) -> str:
    """Base64 text; with `line_break`, a line feed in its middle (a multiline CSV record)."""
    raw = random.Random(seed).randbytes(int(megabytes * 1_000_000 * 3 / 4))
    text = base64.b64encode(raw).decode("ascii")
    return text[: len(text) // 2] + "\n" + text[len(text) // 2 :] if line_break else text


def write_source(folder: Path, fmt: str, value: str, huge_first: bool = False) -> None:
    """A small row, then the huge one (or the huge one first: inference samples the first 8 MiB of a file, so a
    first line longer than that is not typed)."""
    folder.mkdir(parents=True)
    order = [(1, value), (2, "small")] if huge_first else [(2, "small"), (1, value)]
    if fmt == "json":
        (folder / "huge.json").write_text("".join(json.dumps({"id": i, "blob": v}) + "\n" for i, v in order))
    elif fmt == "csv-multiline":
        (folder / "huge.csv").write_text("id,blob\n" + "".join(f'{i},"{v}"\n' for i, v in order))
    else:
        (folder / "huge.csv").write_text("id,blob\n" + "".join(f"{i},{v}\n" for i, v in order))


def run_child(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """The CLI in a subprocess; (result, peak RSS in MB of that child, seconds). Children run one at a time, so the
    RUSAGE_CHILDREN maximum grows only when this child's peak is the highest so far: each format runs in its own
    bench child process to keep the figures separate."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "app.cli", *args], env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return result, rss_kb / 1024, seconds


def run_status(result: subprocess.CompletedProcess[str]) -> str:
    """The CLI summary's first line, and its first error line (a quarantine names the file and the reason)."""
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    if not lines:
        return f"exit {result.returncode}: {result.stderr.strip()[-300:]}"
    errors = [line for line in lines if line.startswith("!")]
    return lines[0].split(" Notes:")[0] + (f" {errors[0]}" if errors else "")


def footer_mb(table_dir: Path) -> float:
    """The largest Parquet footer among the table's data files (its length is the 4 bytes before the magic)."""
    largest = 0
    for path in table_dir.rglob("*.parquet"):
        with open(path, "rb") as f:
            f.seek(-8, os.SEEK_END)
            largest = max(largest, int.from_bytes(f.read(4), "little"))
    return largest / 1e6


def read_back(uri: str, value: str) -> str:
    from deltalake import DeltaTable

    try:
        table = DeltaTable(uri).to_pyarrow_table()
    except Exception as exc:  # the figure is whether pyarrow reads it, whatever it raises
        return f"no: {type(exc).__name__}: {str(exc)[:120]}"
    if not {"id", "blob"} <= set(table.column_names):
        rescued = table.column("_rescued_data").to_pylist() if "_rescued_data" in table.column_names else []
        sizes = [len(r or "") for r in rescued]
        return f"yes, but columns {table.column_names[:4]} (rescued text sizes {sizes})"
    blobs = dict(zip(table.column("id").to_pylist(), table.column("blob").to_pylist(), strict=True))
    if 1 not in blobs:
        return f"yes, without the huge row ({table.num_rows} rows)"
    return "yes, exact" if blobs[1] == value and blobs.get(2) == "small" else "yes, value differs"


def cli_ingestion(
    work: Path, name: str, landing: Path, fmt: dict[str, Any], table: str
) -> tuple[str, str, dict[str, str]]:
    """An active ingestion of `landing` in a fresh console state under `work` (SQLite, local warehouse): its name,
    its table's URI and the environment a CLI child runs it with."""
    from app.bootstrap import build
    from app.settings import Settings
    from core.config import IngestionSpec

    settings = Settings(data_dir=work / "state", secret_key="bench", local_roots=[work / "input"], _env_file=None)
    svc = build(settings)
    try:
        body = {
            "name": name,
            "source": {"type": "local", "path": str(landing)},
            "format": fmt,
            "destination": {"catalog": "main", "database": "raw", "table": table},
        }
        ingestion = svc.ingestions.create(IngestionSpec.model_validate(body), activate=True)
        uri = svc.embedded.table_uri(ingestion.spec.destination)
    finally:
        svc.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")} | {
        "AUTOLOADER_DATA_DIR": str(settings.data_dir),
        "AUTOLOADER_DATABASE_URL": settings.resolved_database_url,
        "AUTOLOADER_SECRET_KEY": "bench",
        "AUTOLOADER_LOCAL_ROOTS": str(work / "input"),
    }
    return ingestion.name, uri, env


def measure(fmt: str, megabytes: float, huge_first: bool) -> Measured:
    with tempfile.TemporaryDirectory(prefix="huge-value-") as work:
        landing = Path(work) / "input" / fmt
        multiline = fmt == "csv-multiline"
        value = huge_text(megabytes, line_break=multiline)
        write_source(landing, fmt, value, huge_first)
        del value
        fmt_body = {"type": "csv", "options": {"multiline": True}} if multiline else {"type": fmt}
        name, uri, env = cli_ingestion(Path(work), f"huge-{fmt}", landing, fmt_body, f"huge_{fmt.replace('-', '_')}")
        result, rss, seconds = run_child(["run", name], env)
        status = run_status(result)
        readable = read_back(uri, huge_text(megabytes, line_break=multiline)) if result.returncode == 0 else "-"
        return Measured(fmt, megabytes, status, rss, seconds, footer_mb(Path(uri)), readable, huge_first)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=100.0)
    parser.add_argument("--format", choices=["json", "csv", "csv-multiline"], action="append")
    parser.add_argument("--huge-first", action="store_true", help="also the case of a huge first line")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asdict(measure(args.format[0], args.mb, args.huge_first))))
        return 0
    cases = [(fmt, False) for fmt in args.format or ["json", "csv", "csv-multiline"]]
    if args.huge_first:
        cases += [(fmt, True) for fmt, _ in cases]
    rows = []
    for fmt, huge_first in cases:
        child = subprocess.run(
            [sys.executable, __file__, "--child", "--format", fmt, "--mb", str(args.mb)]
            + (["--huge-first"] if huge_first else []),
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if child.returncode != 0:
            print(child.stdout, child.stderr, file=sys.stderr)
            return 1
        rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
    print(
        "| format | value MB | huge row | run | peak RSS MB | seconds | largest Parquet footer MB | pyarrow reads it |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['format']} | {r['value_mb']:.0f} | {'first' if r['huge_first'] else 'second'} | {r['status']} "
            f"| {r['rss_mb']:.0f} | {r['seconds']:.1f} | {r['footer_mb']:.3f} | {r['readable']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The crash fault matrix (tests/integration/test_crash_matrix.py) as a markdown table for docs/RELIABILITY.md:
per engine, write mode and crash point, the rows expected / loaded / duplicated after the recovery run, the keys
with a wrong value (merge: not the latest) and the recovery run's status.

Run from the project root:

    .venv/bin/python bench/bench_crash_matrix.py                   # embedded engine (about 3-6 minutes)
    .venv/bin/python bench/bench_crash_matrix.py --engine spark    # Spark parquet, local Spark Connect (~20 min)
    .venv/bin/python bench/bench_crash_matrix.py --engine all

Each case is a CLI run SIGKILLed at the point (`AUTOLOADER_CRASH_AT`), then a recovery run; the test module writes
one JSON line per case to the file named by `AUTOLOADER_CRASH_MATRIX_OUT`, which this script reads back.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULE = "tests/integration/test_crash_matrix.py"
SELECTORS = {"embedded": "embedded", "spark": "spark", "all": "embedded or spark"}


def run_matrix(engine: str, out: Path) -> int:
    env = os.environ | {"AUTOLOADER_CRASH_MATRIX_OUT": str(out), "AUTOLOADER_FULL_FAULT_MATRIX": "1"}
    command = [sys.executable, "-m", "pytest", MODULE, "-q", "-p", "no:cacheprovider", "-k", SELECTORS[engine]]
    return subprocess.run(command, cwd=ROOT, env=env).returncode


def markdown(rows: list[dict[str, object]]) -> str:
    lines = [
        "| engine | write mode | crash point | rows expected | rows loaded | rows duplicated | wrong values "
        "| recovery run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['engine']} | {r['mode']} | `{r['point']}` | {r['expected']} | {r['loaded']} | {r['duplicated']} "
            f"| {r['wrong_values']} | {r['recovery']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=sorted(SELECTORS), default="embedded")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crash-matrix-") as work:
        out = Path(work) / "matrix.jsonl"
        code = run_matrix(args.engine, out)
        rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    print()
    print(markdown(rows))
    print(f"\n{len(rows)} cases measured; pytest exit code {code} (a case that fails before measuring is missing).")
    return code


if __name__ == "__main__":
    raise SystemExit(main())

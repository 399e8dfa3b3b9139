"""One big JSON document (default about 120 MB: one array of 800,000 objects on one line), loaded by a CLI run on the
embedded engine with the JSON `multiline` option: the run's seconds, its peak RSS (getrusage of the child), and the
rows pyarrow reads back.

Run from the project root:

    .venv/bin/python bench/bench_json_document.py
    .venv/bin/python bench/bench_json_document.py --records 200000 --indent 2   # pretty-printed, smaller

The reader before 2026-12-06 built every element as Python objects and wrote each back: about 18 s and 1.2 GB for
the default document (the reader alone, measured with the same data).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_huge_value import cli_ingestion, run_child, run_status


def write_document(path: Path, records: int, indent: int | None, seed: int = 7) -> None:
    rnd = random.Random(seed)
    rows = [
        {
            "id": i,
            "name": f"user-{rnd.random():.12f}",
            "amount": round(rnd.random() * 1000, 2),
            "tags": ["a", "b"],
            "geo": {"lat": rnd.random(), "lon": rnd.random()},
        }
        for i in range(records)
    ]
    path.write_text(json.dumps(rows, indent=indent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=800_000)
    parser.add_argument("--indent", type=int, default=None, help="pretty-print the document (one value per line)")
    args = parser.parse_args()

    from deltalake import DeltaTable

    with tempfile.TemporaryDirectory(prefix="json-document-") as work:
        landing = Path(work) / "input" / "doc"
        landing.mkdir(parents=True)
        write_document(landing / "export.json", args.records, args.indent)
        size_mb = (landing / "export.json").stat().st_size / 1e6
        fmt = {"type": "json", "options": {"multiline": True}}
        name, uri, env = cli_ingestion(Path(work), "json-document", landing, fmt, "json_document")
        result, rss, seconds = run_child(["run", name], env)
        rows = DeltaTable(uri).to_pyarrow_dataset().count_rows() if result.returncode == 0 else 0
        print("| document MB | records | indent | run | seconds | peak RSS MB | rows read back |")
        print("|---|---|---|---|---|---|---|")
        print(
            f"| {size_mb:.0f} | {args.records:,} | {args.indent} | {run_status(result)} | {seconds:.1f} | {rss:.0f} | "
            f"{rows:,} |"
        )


if __name__ == "__main__":
    main()

"""The bad-file corpus (tests/bad_files.py) through the product's pipeline: a table of every file, the outcome it
must have, what the product did and the reason it gave (for docs/RELIABILITY.md).

Run from the project root:

    .venv/bin/python bench/bad_file_corpus.py                # all four landing folders
    .venv/bin/python bench/bad_file_corpus.py --format csv   # one of json, jsonml, csv, parquet
    .venv/bin/python bench/bad_file_corpus.py --markdown     # the table as Markdown

Each format's folder is one ingestion on the embedded engine (SQLite metadata, local warehouse, in a temporary
folder) loaded by one `run_now`; then two new good files arrive and a second run must load exactly them. Rows are
counted by their unique `id`: expected / loaded / duplicated. ✗ marks an outcome that differs from the expected one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.bad_files import FORMATS, FormatRun, run_format, summary_rows, write_corpus, write_more_good_files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--format", choices=sorted(FORMATS), action="append")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    formats = args.format or list(FORMATS)

    from app.bootstrap import build
    from app.settings import Settings

    with tempfile.TemporaryDirectory(prefix="bad-corpus-") as work:
        root = Path(work) / "input"
        corpus = write_corpus(root)
        svc = build(Settings(data_dir=Path(work) / "state", secret_key="bench", local_roots=[root], _env_file=None))
        runs: list[FormatRun] = []
        totals: list[str] = []
        try:
            for fmt in formats:
                started = time.monotonic()
                run = run_format(svc, root, fmt, corpus[fmt])
                first_seconds = time.monotonic() - started
                runs.append(run)
                new_ids = write_more_good_files(root, fmt, 9_000_000 + 10_000 * formats.index(fmt))
                again = svc.runs.run_now(run.ingestion.name)
                totals.append(_totals(run, again, new_ids, first_seconds))
        finally:
            svc.close()
    _print_table(summary_rows(runs), args.markdown)
    print()
    for line in totals:
        print(line)
    return 0 if all(seen.ok for run in runs for seen in run.observed) else 1


def _totals(run: FormatRun, again: object, new_ids: list[int], seconds: float) -> str:
    expected = sum(len(s.entry.ids) for s in run.observed if s.entry.expect in ("loaded", "rescued"))
    loaded = sum(len(s.loaded_ids) for s in run.observed if s.entry.expect in ("loaded", "rescued"))
    duplicated = sum(s.duplicated for s in run.observed)
    bad = sum(1 for s in run.observed if s.entry.expect in ("quarantined", "skipped"))
    named = sum(1 for s in run.observed if s.entry.expect in ("quarantined", "skipped") and s.ok)
    return (
        f"{run.fmt}: {len(run.observed)} entries, first run {run.outcome.status.value} in {seconds:.1f} s; "
        f"rows expected {expected}, loaded {loaded}, duplicated {duplicated}; bad entries named {named}/{bad}; "
        f"next run with {len(new_ids)} new rows: {again.status.value}, "  # type: ignore[attr-defined]
        f"{again.metrics.records_ingested} rows"  # type: ignore[attr-defined]
    )


def _print_table(rows: list[tuple[str, str, str, str, str]], markdown: bool) -> None:
    header = ("file", "what it is", "expected", "actual", "reason / rows")
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(cell.replace("|", "\\|")[:160] for cell in row) + " |")
        return
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(4)]
    print("  ".join(h.ljust(w) for h, w in zip(header[:4], widths, strict=True)) + "  " + header[4])
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4][:160])


if __name__ == "__main__":
    sys.exit(main())

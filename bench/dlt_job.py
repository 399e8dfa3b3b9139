"""dlt's filesystem → Delta pipeline, as a dlt user writes it; run by bench/compare.py with the python of dlt's own
virtualenv (never the product's: dlt is no dependency of Autoloader). Only dlt and the standard library are imported.

    <dlt-venv>/bin/python bench/dlt_job.py --source DIR --glob '*.json' --format json --destination DIR --state DIR

One call is one scheduled run: the filesystem source lists the folder, the `modification_date` incremental skips the
files an earlier run of the same pipeline (its state in --state) loaded, the new ones are read (read_jsonl, or
read_csv with pandas, dlt's defaults) and written to a Delta table under --destination. Prints one JSON line: the
seconds of `pipeline.run` (imports excluded, as for the product's API and the floor), the rows the table holds, and
the package version.
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--source", required=True)
    parser.add_argument("--glob", required=True)
    parser.add_argument("--format", choices=["json", "csv"], required=True)
    parser.add_argument("--destination", required=True)
    parser.add_argument("--state", required=True, help="dlt's pipelines dir (its incremental state)")
    parser.add_argument("--table", default="events")
    args = parser.parse_args()

    import dlt
    from deltalake import DeltaTable
    from dlt.sources.filesystem import filesystem, read_csv, read_jsonl

    files = filesystem(bucket_url=f"file://{args.source}", file_glob=args.glob)
    files.apply_hints(incremental=dlt.sources.incremental("modification_date"))
    reader = read_jsonl() if args.format == "json" else read_csv()
    resource = (files | reader).with_name(args.table)
    pipeline = dlt.pipeline(
        pipeline_name="bench",
        pipelines_dir=args.state,
        destination=dlt.destinations.filesystem(bucket_url=f"file://{args.destination}"),
        dataset_name="bench",
    )
    started = time.perf_counter()
    pipeline.run(resource, table_format="delta")
    seconds = time.perf_counter() - started
    table_dir = f"{args.destination}/bench/{args.table}"
    try:
        rows = DeltaTable(table_dir).count()
    except Exception:  # no table yet: nothing was ever loaded
        rows = 0
    print(json.dumps({"seconds": seconds, "rows": rows, "version": dlt.__version__}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The embedded JSON reader on number shapes real files have, side by side: seconds to read N JSON lines.

    .venv/bin/python bench/bench_json_numbers.py                 # 200,000 lines per shape, best of 3
    .venv/bin/python bench/bench_json_numbers.py --lines 50000
    .venv/bin/python bench/bench_json_numbers.py --format csv    # the same values as CSV rows (id,lat,s)

The reader checks number text a double may not hold exactly in Python (core/formats/json_reader.py,
`_inexact_number_in`), so a shape that makes every line a candidate costs per line. Each shape is read from memory
with `read_json` into an explicit schema (id bigint, lat double, s string); the small-integer shape is the floor.
Shapes: small integers; epoch microseconds (16 digits) and nanoseconds (19 digits) as the id; a 16-digit id inside a
string (`"s-3389158115350687"`); doubles with 7 decimals; doubles in their full shortest form (Python's repr,
JavaScript's toString: 16-17 digits). With `--format csv` the same values are CSV rows read by `read_csv`, whose
text rules check long number text (core/formats/text_types.py, `_inexact_doubles`).
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

LINE = b'{"id":%d,"lat":%s,"s":"%s"}\n'
ROW = b"%d,%s,%s\n"


def shapes(rng: random.Random, csv: bool = False) -> dict[str, Callable[[int], bytes]]:
    def line(ident: int, lat: bytes = b"37.5", text: bytes = b"abc") -> bytes:
        return (ROW if csv else LINE) % (ident, lat, text)

    return {
        "small integers (floor)": lambda i: line(i),
        "epoch microseconds": lambda i: line(1_714_521_600_000_000 + i * 1003),
        "epoch nanoseconds": lambda i: line(1_714_521_600_000_000_000 + i * 1_000_003),
        "16-digit id in a string": lambda i: line(i, text=b"s-%d" % rng.randrange(10**15, 10**16)),
        "doubles, 7 decimals": lambda i: line(i, lat=b"%.7f" % (37 + rng.random())),
        "doubles, shortest form": lambda i: line(i, lat=repr(37 + rng.random()).encode()),
    }


def read_seconds(data: bytes, repeat: int, csv: bool = False) -> tuple[float, int]:
    """Best of `repeat` reads of `data`, and the rows read."""
    import pyarrow as pa

    from core.config import FormatConfig
    from core.formats.csv_reader import read_csv
    from core.formats.json_reader import read_json
    from core.formats.readers import FileReadStats

    schema = pa.schema([("id", pa.int64()), ("lat", pa.float64()), ("s", pa.string()), ("_rescued_data", pa.string())])
    fmt = FormatConfig(type="csv" if csv else "json")
    read = read_csv if csv else read_json
    best, rows = float("inf"), 0
    for _ in range(repeat):
        started = time.perf_counter()
        batches = read(io.BytesIO(data), "/bench.data", fmt, schema, FileReadStats(), 1 << 20)
        rows = sum(batch.num_rows for batch in batches)
        best = min(best, time.perf_counter() - started)
    return best, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=200_000, help="JSON lines per shape")
    parser.add_argument("--repeat", type=int, default=3, help="reads per shape (the best is printed)")
    parser.add_argument("--format", choices=("json", "csv"), default="json", help="JSON lines or CSV rows")
    args = parser.parse_args(argv)
    rng = random.Random(20240501)
    floor = None
    print(f"{'shape':<26} {'MB':>6} {'seconds':>8} {'x floor':>8}")
    csv = args.format == "csv"
    for name, make in shapes(rng, csv).items():
        data = (b"id,lat,s\n" if csv else b"") + b"".join(make(i) for i in range(args.lines))
        seconds, rows = read_seconds(data, args.repeat, csv)
        if rows != args.lines:
            raise SystemExit(f"{name}: read {rows} rows of {args.lines}")
        floor = floor or seconds
        print(f"{name:<26} {len(data) / 1e6:6.1f} {seconds:8.3f} {seconds / floor:8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

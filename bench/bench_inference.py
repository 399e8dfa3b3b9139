"""Inference and preview speed (issue #11 targets: inference over 1,000 new files < 2 s, preview of 10 files < 2 s).

Run from the project root:

    .venv/bin/python bench/bench_inference.py                 # 1,000 files of each format, ~10 KiB each
    .venv/bin/python bench/bench_inference.py --files 5000

It generates JSON-lines and CSV files (ids, ISO timestamps with and without fractions, dates, decimals, text,
leading-zero codes, nested objects in JSON) in a temporary folder, then times, in this process and with the
embedded engine: the shared inference over every file (what a first run does before loading), and Test &
Preview (`core.preview.preview`) of the folder with its default 10 sample files. Each figure is the best of three
(warm page cache). Nothing is asserted; the targets are printed next to the numbers.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

ROWS_PER_FILE = 40


def _record(rng: random.Random, i: int) -> dict[str, object]:
    second = rng.randrange(86_400)
    stamp = f"2024-05-01T{second // 3600:02}:{second // 60 % 60:02}:{second % 60:02}"
    return {
        "id": i,
        "code": f"{rng.randrange(100_000):05}",
        "at": stamp + (f".{rng.randrange(1000):03}Z" if i % 2 else "Z"),
        "day": f"2024-05-{1 + i % 28:02}",
        "amount": round(rng.uniform(0, 1000), 2),
        "name": f"user-{rng.randrange(10**6)}",
        "user": {"tier": rng.choice(["gold", "silver"]), "age": rng.randrange(18, 90)},
    }


def generate(folder: Path, files: int) -> tuple[Path, Path]:
    rng = random.Random(11)
    json_dir, csv_dir = folder / "json", folder / "csv"
    json_dir.mkdir(parents=True)
    csv_dir.mkdir(parents=True)
    for n in range(files):
        records = [_record(rng, n * ROWS_PER_FILE + k) for k in range(ROWS_PER_FILE)]
        (json_dir / f"part-{n:06}.json").write_text("".join(json.dumps(r) + "\n" for r in records))
        flat = [{k: v for k, v in r.items() if k != "user"} for r in records]
        header = ",".join(flat[0])
        rows = "\n".join(",".join(str(v) for v in r.values()) for r in flat)
        (csv_dir / f"part-{n:06}.csv").write_text(header + "\n" + rows + "\n")
    return json_dir, csv_dir


def best_of(runs: int, action: object) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        result = action()  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args()

    from core.config import FormatConfig, IngestionSpec, SourceConfig
    from core.egress import EgressAllow
    from core.engines.embedded import EmbeddedEngine
    from core.engines.inference import infer_schema
    from core.guards import Guards, LocalRoots
    from core.preview import preview
    from core.storage import open_storage

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        json_dir, csv_dir = generate(root, args.files)
        guards = Guards(LocalRoots([str(root)]), EgressAllow())
        engine = EmbeddedEngine(str(root / "warehouse"))
        print(f"{args.files:,} files of {ROWS_PER_FILE} records per format")
        for kind, folder in (("json", json_dir), ("csv", csv_dir)):
            storage = open_storage(SourceConfig(type="local", path=str(folder)), guards)
            files = sorted(storage.list_files(None), key=lambda f: f.path)
            fmt = FormatConfig(type=kind)
            seconds, inferred = best_of(3, lambda s=storage, f=files, m=fmt: infer_schema(s, f, m))
            columns = ", ".join(f"{f.name}:{f.type}" for f in inferred.schema)  # type: ignore[attr-defined]
            print(f"  {kind:4} inference over {len(files):,} files  {seconds:6.2f} s   (target < 2 s for 1,000)")
            print(f"       schema: {columns}")
            spec = IngestionSpec.model_validate(
                {
                    "name": f"bench-{kind}",
                    "source": {"type": "local", "path": str(folder)},
                    "format": {"type": kind},
                    "destination": {"table": f"bench_{kind}"},
                }
            )
            seconds, _ = best_of(3, lambda sp=spec, s=storage: preview(sp, s, engine))
            print(f"  {kind:4} Test & Preview (10 sample files)  {seconds:6.2f} s   (target < 2 s)")


if __name__ == "__main__":
    main()

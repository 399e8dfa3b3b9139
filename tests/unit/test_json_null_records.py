"""A JSON-lines record that is `null`: kept as a malformed record, never given to Arrow's reader.

pyarrow 26's JSON reader crashes the process (SIGSEGV) when one of its blocks starts with `null`; it cuts large
texts into blocks itself. Each case runs in a child process, so a crash fails the test instead of the test run."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.formats.json_reader import _has_null_record

ROOT = Path(__file__).resolve().parents[2]

READ = textwrap.dedent(
    """
    import io, json, sys
    from core.config import FormatConfig
    from core.formats.json_reader import infer_json
    from core.formats.readers import read_file
    from core.formats.streams import FileReadStats
    import pyarrow as pa

    data = sys.stdin.buffer.read()
    fmt = FormatConfig(type="json")
    schema = infer_json(data[: 1 << 20], "f.json", fmt)
    stats = FileReadStats()
    table = pa.Table.from_batches(list(read_file(io.BytesIO(data), "f.json", fmt, schema, stats)))
    print(json.dumps({"ids": table.column("id").to_pylist(),
                      "rescued": table.column("_rescued_data").to_pylist(), "bad": stats.bad_records}))
    """
)


def read_in_child(data: bytes) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", READ], input=data, capture_output=True, cwd=ROOT, timeout=120, check=False
    )
    assert done.returncode == 0, f"the reader died ({done.returncode}): {done.stderr.decode()[-2000:]}"
    result: dict[str, object] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(
    "data",
    [b'null\n{"id": 2}\n', b'  \n null \r\n{"id": 2}\n', b'{"id": 2}\nnull\n'],
    ids=["first", "after-white-space", "last"],
)
def test_a_null_record_is_kept_as_malformed_and_the_rest_loads(data: bytes) -> None:
    result = read_in_child(data)
    assert result["bad"] == 1
    ids, rescued = result["ids"], result["rescued"]
    assert isinstance(ids, list) and isinstance(rescued, list)
    assert [i for i in ids if i is not None] == [2]
    assert [json.loads(r) for r in rescued if r is not None] == [{"_malformed": "null"}]


def test_a_null_record_where_arrow_would_start_a_block_of_a_large_text() -> None:
    """Two megabytes of records with a `null` line every few hundred kilobytes: Arrow reads such a text in 1 MiB
    blocks on threads, so one of them may start at any line."""
    lines = []
    for i in range(60_000):
        lines.append(json.dumps({"id": i, "name": f"user-{i}", "note": None}))
        if i % 7_919 == 7_918:
            lines.append("null")
    result = read_in_child(("\n".join(lines) + "\n").encode())
    ids = result["ids"]
    assert isinstance(ids, list)
    assert result["bad"] == 7
    assert [i for i in ids if i is not None] == list(range(60_000))


@pytest.mark.parametrize(
    ("block", "found"),
    [
        (b'{"a": null}\n{"a": 1}\n', False),  # null values only
        (b'{"a": 1}\nnull\n', True),
        (b'{"a": null}\n  null\n', True),
        (b'{"a": null}\n\n[null]\n', False),  # a line that is not an object, but not null
        (b'{"a": null}\r\n\xef\xbb\xbfnull\r\n', True),
        (b" null", True),
        (b"nullx\n", True),  # not JSON either way: Python says so
        (b'{"a": null}\r{"a": 1}\rnull\r', True),  # Arrow also cuts lines at a lone carriage return
        (b'{"a": null}\r\n{"a": 1}\r\n', False),
        (b'{"a": null}\r\n\r\n \r\n\tnull\r\n', True),
    ],
)
def test_a_null_record_is_found_where_a_line_starts(block: bytes, found: bool) -> None:
    assert _has_null_record(block) is found


@pytest.mark.timeout(60)
def test_runs_of_blank_lines_are_looked_at_once() -> None:
    """Blank lines are not objects, so the regex looks; it must not start over at each line feed of a run (this
    took two minutes for 100,000 blank lines when the run could hold line breaks)."""
    block = b'{"a": null}\n' + b"\n" * 200_000 + b"\r\n" * 50_000 + b'{"a": 1}\n'
    assert _has_null_record(block) is False
    assert _has_null_record(block + b"\n \r null\n") is True


def test_a_null_record_after_a_lone_carriage_return_where_arrow_starts_a_block() -> None:
    """Arrow's second 1 MiB block starts right after the `\r`: the `null` there crashed the reader."""
    data = b'{"id":1}\n' * 116_507 + b'{"id":2}\rnull\n' + b'{"id":3}\n' * 10  # the \r: byte 1,048,571
    result = read_in_child(data)
    ids = result["ids"]
    assert isinstance(ids, list)
    assert ids.count(1) == 116_507 and ids.count(3) == 10
    assert result["bad"] >= 1

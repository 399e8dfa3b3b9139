"""The child process that decodes ORC stripes (core/formats/orc_reader.py says why: corrupt data can crash the ORC
library, and a crash here must not take the run, or the server, with it).

Run as a script (`python orc_worker.py`), it imports pyarrow only. It reads one file path per line on stdin and,
for each, writes to stdout: `E` + a 4-byte length + a UTF-8 message when the file cannot be opened; else `S`, an
Arrow IPC stream of the file's stripes (one batch or more per stripe), then `K`, or `E` + length + message when a
stripe could not be read (the stream is closed first, so the batches before it are whole).
"""

from __future__ import annotations

import sys
from typing import BinaryIO

import pyarrow as pa
import pyarrow.orc as orc

STREAM, OK, ERROR = b"S", b"K", b"E"


def write_error(out: BinaryIO, message: str) -> None:
    data = message.encode("utf-8", "replace")[:4000]
    out.write(ERROR + len(data).to_bytes(4, "big") + data)
    out.flush()


def serve_one(path: str, out: BinaryIO) -> None:
    try:
        opened = orc.ORCFile(path)
        schema = opened.schema
    except Exception as exc:
        write_error(out, f"open: {type(exc).__name__}: {exc}")
        return
    out.write(STREAM)
    writer = pa.ipc.new_stream(out, schema)
    failure = None
    for index in range(opened.nstripes):
        try:
            stripe = opened.read_stripe(index)
        except Exception as exc:
            failure = f"stripe {index + 1} of {opened.nstripes}: {type(exc).__name__}: {exc}"
            break
        batches = stripe.to_batches() if isinstance(stripe, pa.Table) else [stripe]
        for batch in batches:
            writer.write_batch(batch)
    writer.close()
    if failure is None:
        out.write(OK)
        out.flush()
    else:
        write_error(out, failure)


def main() -> None:
    out = sys.stdout.buffer
    for line in sys.stdin.buffer:
        serve_one(line.decode("utf-8").rstrip("\n"), out)


if __name__ == "__main__":
    main()

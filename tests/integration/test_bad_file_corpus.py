"""Bad files never block good ones: the corpus of tests/bad_files.py through the real pipeline (embedded engine).

One landing folder per format (JSON lines, multiline JSON, CSV, Parquet, ORC, Avro, XML; gzip/bzip2/zstd/LZ4
variants) mixes good files
with bad ones. One run per folder, then, per entry: a bad file is quarantined (or skipped) with a reason that names it
and says what is wrong, with an action; every good row is loaded exactly once and equals what pyarrow reads from the
good files; no run ends with an internal error; the next run loads new good files. Test & Preview on the same folders
answers (HTTP 200) and names the bad files.

The runs share one metadata DB (SQLite) and warehouse for the module: one run per format, judged by many cases.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import fastavro
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest
import zstandard

from core.domain import RunStatus
from tests.bad_files import (
    FORMATS,
    CorpusFile,
    FormatRun,
    ingestion_spec,
    reason_problems,
    run_format,
    write_corpus,
    write_more_good_files,
)
from tests.helpers import remove_state

COMPARED = ["id", "name", "amount", "country"]


def lz4_frame_decompress(data: bytes) -> bytes:
    """An LZ4 frame decompressed by the `lz4` package when installed, else by pyarrow's codec."""
    try:
        import lz4.frame
    except ImportError:
        return pa.CompressedInputStream(pa.BufferReader(data), "lz4").read()
    return bytes(lz4.frame.decompress(data))


def _cases() -> list[Any]:
    cases = []
    for fmt, entries in write_corpus(None).items():
        for entry in entries:
            marks = [pytest.mark.xfail(strict=True, reason=entry.xfail)] if entry.xfail else []
            cases.append(pytest.param(fmt, entry.name, marks=marks, id=f"{fmt}/{entry.name}"))
    return cases


@pytest.fixture(scope="module")
def corpus_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[CorpusFile]]]:
    root = tmp_path_factory.mktemp("corpus")
    return root, write_corpus(root)


@pytest.fixture(scope="module")
def corpus_services() -> Iterator[Any]:
    """Services of the module's own (the `services` fixture is per test): SQLite metadata outside the local roots."""
    from app.bootstrap import build
    from app.settings import Settings

    state = Path(tempfile.mkdtemp(prefix="autoloader-state-"))
    svc = build(
        Settings(
            data_dir=state / "data",
            database_url=f"sqlite:///{state / 'meta.db'}",
            secret_key="test-secret-key",
            heartbeat_seconds=0.5,
            stale_run_seconds=30,
            rate_limit_per_minute=0,
        )
    )
    yield svc
    svc.close()
    remove_state(state, __name__)


@pytest.fixture(scope="module")
def first_run(corpus_root, corpus_services) -> Callable[[str], FormatRun]:
    """The first run over a format's folder, made once per module."""
    root, corpus = corpus_root
    done: dict[str, FormatRun] = {}

    def get(fmt: str) -> FormatRun:
        if fmt not in done:
            done[fmt] = run_format(corpus_services, root, fmt, corpus[fmt])
        return done[fmt]

    return get


@pytest.mark.slow
@pytest.mark.parametrize(("fmt", "name"), _cases())
def test_every_entry_gets_its_outcome(first_run, fmt: str, name: str) -> None:
    seen = next(s for s in first_run(fmt).observed if s.entry.name == name)
    assert seen.ok, f"{fmt}/{name} ({seen.entry.what}): {'; '.join(seen.problems)}"


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_no_internal_error_and_every_good_row_once(first_run, corpus_root, fmt: str) -> None:
    run = first_run(fmt)
    assert run.outcome.status == RunStatus.PARTIAL, run.outcome.message
    internal = [e for e in run.outcome.errors if e.kind == "internal"]
    assert not internal, internal
    assert run.table is not None
    ids = [i for i in run.table.column("id").to_pylist() if i is not None]
    assert len(ids) == len(set(ids)), "rows loaded twice"
    expected = {i for s in run.observed if s.entry.expect in ("loaded", "rescued") for i in s.entry.ids}
    assert set(ids) == expected
    root, corpus = corpus_root
    good = [e for e in corpus[fmt] if e.good]
    mine = read_good_files(root / fmt, good, fmt)
    loaded = run.table.select(COMPARED).filter(pa.compute.is_in(run.table.column("id"), mine.column("id")))
    assert loaded.sort_by("id").cast(mine.schema).to_pylist() == mine.sort_by("id").to_pylist()


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_healthy_after_the_bad_files(first_run, corpus_root, corpus_services, fmt: str) -> None:
    run = first_run(fmt)
    root, _ = corpus_root
    new_ids = write_more_good_files(root, fmt, 5_000_000 + 100_000 * list(FORMATS).index(fmt))
    again = corpus_services.runs.run_now(run.ingestion.name)
    assert again.status == RunStatus.SUCCESS, again.message
    assert again.metrics.files_processed == 2 and again.metrics.records_ingested == len(new_ids)
    from tests.helpers import read_table

    table = read_table(corpus_services.embedded.table_uri(run.ingestion.spec.destination))
    ids = [i for i in table.column("id").to_pylist() if i is not None]
    assert len(ids) == len(set(ids)) and set(new_ids) <= set(ids)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_preview_names_the_bad_files(corpus_root, corpus_services, fmt: str) -> None:
    """The wizard's Test & Preview over the whole folder answers 200 and lists the bad files with their reasons."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from app.api import mount_api
    from tests.conftest import admin_headers

    root, corpus = corpus_root
    body = ingestion_spec(root / fmt, fmt).model_dump(mode="json", by_alias=True)
    body["name"] = f"preview-{fmt}"
    body["format"].setdefault("schema", {})["sample_files"] = 1000
    app = FastAPI()
    mount_api(app, corpus_services)
    with TestClient(app, raise_server_exceptions=False, headers=admin_headers(corpus_services)) as client:
        answer = client.post("/api/v1/ingestions/test", json=body)
    assert answer.status_code == 200, answer.text[:2000]
    bad_files = answer.json()["bad_files"]
    for entry in corpus[fmt]:
        if entry.expect != "quarantined":
            continue
        path = str(root / fmt / entry.name)
        assert path in bad_files, f"{entry.name} ({entry.what}) is not among the preview's bad files"
        problems = [p for p in reason_problems(bad_files[path], "-", entry) if "action" not in p]
        assert not problems, problems


def read_good_files(folder: Path, good: list[CorpusFile], fmt: str) -> pa.Table:
    """The good files read with pyarrow, fastavro or xml.etree alone (decompressed by hand), as the rows the table
    must hold."""
    tables = []
    for entry in good:
        data = (folder / entry.name).read_bytes()
        if fmt == "parquet":
            tables.append(pq.read_table(pa.BufferReader(data)))
            continue
        if fmt == "orc":
            tables.append(orc.read_table(pa.BufferReader(data)))
            continue
        if fmt == "avro":
            tables.append(pa.Table.from_pylist(list(fastavro.reader(io.BytesIO(data)))))
            continue
        data = _decompressed(entry.name, data)
        if fmt == "xml":
            tables.append(pa.Table.from_pylist([_xml_record(item) for item in ElementTree.fromstring(data)]))
        elif fmt == "csv":
            tables.append(pcsv.read_csv(io.BytesIO(data)))
        elif fmt == "jsonml":
            tables.append(pa.Table.from_pylist(json.loads(data)))
        else:
            tables.append(pjson.read_json(io.BytesIO(data)))
    return pa.concat_tables([t.select(COMPARED) for t in tables], promote_options="permissive")


def _xml_record(item: ElementTree.Element) -> dict[str, Any]:
    texts = {child.tag: child.text for child in item}
    return {
        "id": int(texts["id"]),
        "name": texts["name"],
        "amount": float(texts["amount"]),
        "country": texts["country"],
    }


def _decompressed(name: str, data: bytes) -> bytes:
    if name.endswith(".lz4"):
        return bytes(lz4_frame_decompress(data))
    if name.endswith(".gz"):
        return gzip.decompress(data)
    if name.endswith(".bz2"):
        return bz2.decompress(data)
    if name.endswith(".zst"):
        return bytes(zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read())
    return data


SPARK_SUBSET = [
    "good-1.json",
    "good-2.json.gz",
    "truncated.json",
    "truncated.json.gz",
    "parquet-as.json",
    "csv-as.json",
    "latin1.json",
    "utf8-bom.json",
    "nul-bytes.json",
    "empty.json",
    "deep-1000.json",
    "deep-100000.json",
    "case-keys.json",
    "mixed-types.json",
]


@pytest.mark.slow
def test_spark_engine_on_a_subset(services: Any, tmp_path: Path, database_url: str) -> None:
    """A JSON-lines subset on the Spark engine (local Spark Connect): no internal error, every good row once, the next
    run healthy. What each bad file becomes is reported, not asserted per file (the Spark readers' own rules)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("about the engine, not the metadata database")
    from app.db.models import ClusterCreate
    from tests.spark_server import spark_server

    server = spark_server()
    cluster = services.clusters.create(
        ClusterCreate(name="corpus-spark", connect_url=server.url, token=server.token, table_format="parquet")
    )
    entries = [e for e in write_corpus(tmp_path)["json"] if e.name in SPARK_SUBSET]
    for path in (tmp_path / "json").iterdir():
        if path.name in SPARK_SUBSET:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    run = run_format(services, tmp_path, "json", entries, cluster_id=cluster.id)
    report = "\n".join(f"{s.entry.name}: {s.status} {s.reason[:150]} {'; '.join(s.problems)}" for s in run.observed)
    assert not [e for e in run.outcome.errors if e.kind == "internal"], report
    good = [s for s in run.observed if s.entry.good]
    assert all(len(s.loaded_ids) == len(s.entry.ids) and not s.duplicated for s in good), report
    new_ids = write_more_good_files(tmp_path, "json", 7_000_000)
    again = services.runs.run_now(run.ingestion.name)
    assert again.status == RunStatus.SUCCESS and again.metrics.records_ingested == len(new_ids), again.message
    print(report)

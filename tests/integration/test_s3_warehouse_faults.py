"""The embedded engine writing to an S3 warehouse (SeaweedFS) whose answers get lost, that stops, or that refuses
the credentials: each batch lands once, and the run says what failed and what to do."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from app.bootstrap import build
from core.domain import FileStatus, RunStatus
from tests.helpers import spec, write_json_files
from tests.integration.test_source_object_faults import _body
from tests.services import ACCESS_KEY, SECRET_KEY, SeaweedFS

pytestmark = pytest.mark.s3

COMMIT = re.compile(r"/_delta_log/\d{20}\.json(\?|$)")


class Proxy:
    """An HTTP/1.1 reverse proxy in front of SeaweedFS's S3 port. It keeps the Host header, so SigV4 signatures
    still match. `drop_response(method, path)` True: the request is forwarded and done by the server, but the
    client's connection is cut before any answer (a response lost on the network)."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.drop_response: Callable[[str, str], bool] | None = None
        self.down_after_commit = False  # once a commit PUT was answered, every later request is cut (store down)
        self.down = False
        # truncate(method, path, headers) -> n: answer with the full length but only the first n bytes, then cut
        self.truncate: Callable[[str, str, Any], int | None] | None = None
        self.log: list[tuple[Any, ...]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _do(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                method, path = self.command, self.path
                if proxy.down:
                    proxy.log.append(("refused", method, path))
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                upstream.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
                for key, value in self.headers.items():
                    upstream.putheader(key, value)
                upstream.endheaders(body)
                response = upstream.getresponse()
                data = response.read()
                upstream.close()
                if proxy.drop_response is not None and proxy.drop_response(method, path):
                    proxy.log.append(("dropped", method, path, response.status))
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                cut = proxy.truncate(method, path, self.headers) if proxy.truncate is not None else None
                if cut is not None:
                    proxy.log.append(("truncated", method, path, response.status, cut))
                    self.send_response_only(response.status, response.reason)
                    for key, value in response.getheaders():
                        if key.lower() not in ("transfer-encoding", "connection"):
                            self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                proxy.log.append(("ok", method, path, response.status))
                if proxy.down_after_commit and method == "PUT" and COMMIT.search(path) and response.status < 300:
                    proxy.down = True
                self.send_response_only(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                length_out = (response.getheader("Content-Length") or "0") if method == "HEAD" else str(len(data))
                self.send_header("Content-Length", length_out)
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _do

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    server = SeaweedFS(tmp_path_factory.mktemp("attack-weed"))
    server.start()
    try:
        yield server
    finally:
        server.stop(kill=True)


def _options(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
        "max_retries": "2",
        "retry_timeout": "10s",
    }


def _cut_the_commit_answer(proxy: Proxy) -> None:
    proxy.drop_response = lambda method, path: method == "PUT" and COMMIT.search(path) is not None


def _stop_after_the_commit(proxy: Proxy) -> None:
    proxy.down_after_commit = True


@pytest.mark.parametrize("fault", [_cut_the_commit_answer, _stop_after_the_commit], ids=["answer-lost", "store-down"])
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_commit_that_landed_is_not_loaded_twice(
    settings: Any, weed: SeaweedFS, tmp_path: Path, fault: Callable[[Proxy], None]
) -> None:
    """The warehouse commits a batch, then its answer is lost (connection cut) or the store stops answering before
    the table is read back: the batch must be in the table once, in this run (answer lost: the table is asked) or
    the next one (store down: the batch stays pending and the next run settles it). Before, 40 rows for 30."""
    proxy = Proxy(weed.s3_port)
    bucket = weed.new_bucket("wh")
    options = _options(proxy.url)
    svc = build(settings.model_copy(update={"warehouse": f"s3://{bucket}/wh", "warehouse_storage_options": options}))
    try:
        landing = tmp_path / "landing"
        write_json_files(landing, 2, 10)
        ingestion = svc.ingestions.create(spec(str(landing), table="landed"), activate=True)
        assert svc.runs.run_now(ingestion.name).status == RunStatus.SUCCESS
        write_json_files(landing, 1, 10, start_id=20, prefix="later")
        fault(proxy)
        svc.runs.run_now(ingestion.name)
        proxy.drop_response, proxy.down_after_commit, proxy.down = None, False, False
        third = svc.runs.run_now(ingestion.name)
        table = DeltaTable(svc.embedded.table_uri(ingestion.spec.destination), storage_options=options)
        rows = table.to_pyarrow_table()
    finally:
        svc.close()
        proxy.close()
    assert any(entry[0] != "ok" for entry in proxy.log), "the fault never happened"
    settled_by_third = 1 if fault is _stop_after_the_commit else 0  # the run that settles a batch counts its files
    assert third.status == RunStatus.SUCCESS and third.metrics.files_processed == settled_by_third, third.message
    assert (rows.num_rows, pc.count_distinct(rows.column("id")).as_py()) == (30, 30)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_source_overlapping_the_s3_warehouse_is_refused(settings: Any, weed: SeaweedFS) -> None:
    """Source s3://b/ (every folder) while the warehouse is s3://b/warehouse: the table's own data files would be
    listed as new source files, so every run would load the previous runs' output again (30 rows for 10 before
    the check). A source inside the warehouse is refused too; a sibling folder is fine."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.errors import ConfigError

    bucket = weed.new_bucket("lake")
    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": list(range(10))}), buffer)
    weed.client().put_object(Bucket=bucket, Key="incoming/batch-1.parquet", Body=buffer.getvalue())
    options = _options(weed.endpoint_url)
    warehouse = f"s3://{bucket}/warehouse"
    svc = build(settings.model_copy(update={"warehouse": warehouse, "warehouse_storage_options": options}))
    try:
        for prefix in ("", "warehouse/main/raw/lake/"):
            source = weed.source(bucket, prefix).model_dump(mode="json", exclude_none=True)
            with pytest.raises(ConfigError, match="overlaps the warehouse") as refused:
                svc.ingestions.create(spec("/unused", table="lake", source=source, format={"type": "parquet"}))
            assert refused.value.field == "source.path"
        source = weed.source(bucket, "incoming/").model_dump(mode="json", exclude_none=True)
        ing = svc.ingestions.create(
            spec("/unused", table="lake", source=source, format={"type": "parquet"}), activate=True
        )
        runs = [svc.runs.run_now(ing.name) for _ in range(2)]
        table = DeltaTable(svc.embedded.table_uri(ing.spec.destination), storage_options=options).to_pyarrow_table()
    finally:
        svc.close()
    assert [run.status for run in runs] == [RunStatus.SUCCESS, RunStatus.SUCCESS]
    assert table.num_rows == 10


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_warehouse_down_for_a_run_fails_it_as_transient_naming_the_store(
    settings: Any, weed: SeaweedFS, tmp_path: Path
) -> None:
    bucket = weed.new_bucket("wh")
    options = _options(weed.endpoint_url)
    svc = build(settings.model_copy(update={"warehouse": f"s3://{bucket}/wh", "warehouse_storage_options": options}))
    try:
        landing = tmp_path / "landing"
        write_json_files(landing, 2, 10)
        ingestion = svc.ingestions.create(spec(str(landing), table="outage"), activate=True)
        assert svc.runs.run_now(ingestion.name).status == RunStatus.SUCCESS
        write_json_files(landing, 1, 10, start_id=20, prefix="later")
        with weed.down(kill=True):
            failed = svc.runs.run_now(ingestion.name)
        again = svc.runs.run_now(ingestion.name)
        table = DeltaTable(svc.embedded.table_uri(ingestion.spec.destination), storage_options=options)
        rows = table.to_pyarrow_table()
    finally:
        svc.close()
    assert again.status == RunStatus.SUCCESS, again.message
    assert (rows.num_rows, pc.count_distinct(rows.column("id")).as_py()) == (30, 30)
    assert failed.status == RunStatus.FAILED
    assert failed.transient, f"not transient: {failed.message}"
    assert failed.errors[0].kind != "internal", failed.errors[0].message
    assert weed.endpoint_url.split("//")[1] in failed.message or bucket in failed.message, failed.message


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_warehouse_credentials_refused_at_run_time_give_a_clear_error(
    settings: Any, weed: SeaweedFS, tmp_path: Path
) -> None:
    """The warehouse's secret was rotated after the server started (`autoloader run` does not probe): the run should
    fail with a table/credentials error naming the warehouse and what to fix, not an internal error."""
    bucket = weed.new_bucket("wh")
    good = _options(weed.endpoint_url)
    landing = tmp_path / "landing"
    write_json_files(landing, 1, 10)
    svc = build(settings.model_copy(update={"warehouse": f"s3://{bucket}/wh", "warehouse_storage_options": good}))
    try:
        ingestion = svc.ingestions.create(spec(str(landing), table="creds"), activate=True)
        assert svc.runs.run_now(ingestion.name).status == RunStatus.SUCCESS
    finally:
        svc.close()
    write_json_files(landing, 1, 10, start_id=10, prefix="later")
    bad = {**good, "AWS_SECRET_ACCESS_KEY": "rotated-away"}
    svc = build(settings.model_copy(update={"warehouse": f"s3://{bucket}/wh", "warehouse_storage_options": bad}))
    try:
        failed = svc.runs.run_now(ingestion.name)
    finally:
        svc.close()
    error = failed.errors[0]
    assert error.kind != "internal", error.message
    assert "\\x1b" not in repr(error.message), "terminal colour codes in the message"
    assert "AUTOLOADER_WAREHOUSE" in error.action, error.action


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_drop_then_recreate_a_table_on_s3(settings: Any, weed: SeaweedFS, tmp_path: Path) -> None:
    bucket = weed.new_bucket("wh")
    options = _options(weed.endpoint_url)
    svc = build(settings.model_copy(update={"warehouse": f"s3://{bucket}/wh", "warehouse_storage_options": options}))
    try:
        landing = tmp_path / "landing"
        write_json_files(landing, 2, 10)
        first = svc.ingestions.create(spec(str(landing), table="again", name="first"), activate=True)
        assert svc.runs.run_now(first.name).status == RunStatus.SUCCESS
        svc.ingestions.delete(first.id, drop_table=True)
        second = svc.ingestions.create(
            spec(str(landing), table="again", name="second", destination={"write_mode": "create"}), activate=True
        )
        run = svc.runs.run_now(second.name)
        table = DeltaTable(svc.embedded.table_uri(second.spec.destination), storage_options=options)
        rows = table.to_pyarrow_table()
    finally:
        svc.close()
    assert run.status == RunStatus.SUCCESS and rows.num_rows == 20
    assert table.version() == 1  # the create's own commit (no leftover of the dropped table's log), then the batch


def test_a_batch_left_pending_is_fenced_on_s3_and_its_files_loaded_once(
    settings: Any, weed: SeaweedFS, tmp_path: Path
) -> None:
    """The fence (an empty commit under the batch's number, core/pipeline.py `_reconcile`) on an object-store
    warehouse: a batch a dead run left pending and uncommitted is fenced there, read back as a fence from the
    snapshot, and its files loaded once in the batch above it."""
    from datetime import UTC, datetime

    from app.runner import INTERRUPTED
    from core.domain import LedgerEntry, RunMetrics

    bucket = weed.new_bucket("wh")
    options = _options(weed.endpoint_url)
    svc = build(settings.model_copy(update={"warehouse": f"s3://{bucket}/wh", "warehouse_storage_options": options}))
    try:
        landing = tmp_path / "landing"
        write_json_files(landing, 2, 10)
        ingestion = svc.ingestions.create(spec(str(landing), table="fenced"), activate=True)
        assert svc.runs.run_now(ingestion.name).status == RunStatus.SUCCESS
        late = write_json_files(landing, 2, 10, start_id=20, prefix="late")
        dead = svc.store.create_run(ingestion.id, "manual")
        modified = {p: datetime.fromtimestamp(p.stat().st_mtime, UTC) for p in late}
        entries = [LedgerEntry(str(p), p.stat().st_size, modified[p], None, FileStatus.PENDING) for p in late]
        svc.store.add_pending_batch(ingestion.id, dead, 2, entries)
        svc.store.finish_run(dead, RunStatus.FAILED, RunMetrics(), [INTERRUPTED], "Interrupted.")
        run = svc.runs.run_now(ingestion.name)
        destination = ingestion.spec.destination
        fenced = svc.embedded.is_fence(destination, ingestion.app_id, 2)
        committed = svc.embedded.committed_version(destination, ingestion.app_id)
        rows = DeltaTable(svc.embedded.table_uri(destination), storage_options=options).to_pyarrow_table()
    finally:
        svc.close()
    assert run.status == RunStatus.SUCCESS and "re-queued 2 files" in run.message, run.message
    assert (fenced, committed) == (True, 3)
    assert (rows.num_rows, pc.count_distinct(rows.column("id")).as_py()) == (40, 40)


def _objects(files: int, records: int) -> dict[str, bytes]:

    return {
        f"events/part-{i:05d}.json": "".join(
            json.dumps({"id": i * records + r}) + "\n" for r in range(records)
        ).encode()
        for i in range(files)
    }


@pytest.mark.parametrize("attempt", range(3))
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_store_killed_mid_run_source_and_warehouse_on_it(settings: Any, weed: SeaweedFS, attempt: int) -> None:
    """SeaweedFS holds both the source and the warehouse and is SIGKILLed in the middle of a run: the run fails
    (transient, naming the store), and after a restart the next run loads every file exactly once."""
    import time

    files, records = 300, 10
    bucket = weed.new_bucket("both")
    weed.put_many(bucket, _objects(files, records), workers=8)
    options = _options(weed.endpoint_url)
    settings.storage_retry_attempts = 2
    settings.storage_retry_base_seconds = 0.1
    svc = build(settings.model_copy(update={"warehouse": f"s3://{bucket}/wh", "warehouse_storage_options": options}))
    try:
        source = weed.source(bucket, "events/").model_dump(mode="json", exclude_none=True)
        ing = svc.ingestions.create(
            spec("/unused", table="both", source=source, limits={"max_files_per_batch": 10}), activate=True
        )
        run_id = svc.store.create_run(ing.id, "manual")
        worker = threading.Thread(target=svc.runner.run_inline, args=(ing.id, run_id))
        worker.start()
        deadline = time.monotonic() + 60
        while svc.store.get_run(ing.id, run_id).files_done < 20 * (attempt + 1) and time.monotonic() < deadline:
            time.sleep(0.01)
        weed.stop(kill=True)
        worker.join(120)
        weed.start()
        again = svc.runs.run_now(ing.name)
        table = DeltaTable(svc.embedded.table_uri(ing.spec.destination), storage_options=options).to_pyarrow_table()
    finally:
        svc.close()
    ids = table.column("id")
    assert again.status == RunStatus.SUCCESS, again.message
    assert (table.num_rows, pc.count_distinct(ids).as_py()) == (files * records, files * records)


MANUAL = {"inference": "manual", "schema_json": [{"name": "id", "type": "bigint"}, {"name": "v", "type": "string"}]}


def _ledger(svc: Any, ingestion_id: int) -> dict[str, Any]:
    return {path: known.status for path, known in svc.store.known_files(ingestion_id).items()}


@pytest.mark.parametrize("lose_answer", [False, True], ids=["control", "answer-lost"])
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_file_set_aside_in_a_batch_whose_answer_was_lost_is_not_recorded_loaded(
    settings: Any, weed: SeaweedFS, lose_answer: bool
) -> None:
    """An S3 source with an SSE-C object (the store refuses to serve it) and a manual schema, so the engine sets it
    aside while streaming the batch. Found by an attack helper: when the commit's answer was lost, the kept batch's
    outcomes were rebuilt from row counts, and the refused object was recorded LOADED with 0 records."""
    bucket = weed.new_bucket("src")
    client = weed.client()
    proxy = Proxy(weed.s3_port)
    wh = weed.new_bucket("wh")
    options = _options(proxy.url)
    svc = build(settings.model_copy(update={"warehouse": f"s3://{wh}/wh", "warehouse_storage_options": options}))
    try:
        # the table exists first (a clean batch), so the lost answer is an append's
        client.put_object(Bucket=bucket, Key="landing/a-first.json", Body=_body(100))
        source = weed.source(bucket, "landing/").model_dump(mode="json", exclude_none=True)
        ing = svc.ingestions.create(
            spec("/unused", table="refused", source=source, format={"type": "json", "schema": MANUAL}), activate=True
        )
        assert svc.runs.run_now(ing.name).status == RunStatus.SUCCESS
        for i in range(2):
            client.put_object(Bucket=bucket, Key=f"landing/part-{i}.json", Body=_body(i))
        weed.put_with_customer_key(bucket, "landing/part-9-encrypted.json", _body(9))
        if lose_answer:
            proxy.drop_response = lambda method, path: method == "PUT" and COMMIT.search(path) is not None
        run = svc.runs.run_now(ing.name)
        proxy.drop_response = None
        ledger = _ledger(svc, ing.id)
    finally:
        svc.close()
        proxy.close()
    if lose_answer:
        assert any(entry[0] == "dropped" for entry in proxy.log), "the fault never happened"
    encrypted = f"s3://{bucket}/landing/part-9-encrypted.json"
    assert ledger[encrypted] == FileStatus.QUARANTINED, (ledger[encrypted], run.status, run.message)
    assert run.status == RunStatus.PARTIAL and run.metrics.files_quarantined == 1, run.message


@pytest.mark.parametrize("write_mode", ["append", "overwrite", "merge"])
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_commit_answer_lost_from_table_creation_on_multi_batch(
    settings: Any, weed: SeaweedFS, tmp_path: Any, write_mode: str
) -> None:
    """Every commit's answer is lost, starting with the table's creation, in a run of 3 batches
    (max_files_per_batch=1): each batch must be in the table once, and a later run loads nothing."""
    proxy = Proxy(weed.s3_port)
    wh = weed.new_bucket("wh")
    options = _options(proxy.url)
    svc = build(settings.model_copy(update={"warehouse": f"s3://{wh}/wh", "warehouse_storage_options": options}))
    try:
        landing = tmp_path / "landing"
        write_json_files(landing, 3, 5)
        destination = {"write_mode": write_mode}
        if write_mode == "merge":
            destination["merge_keys"] = ["id"]
        ing = svc.ingestions.create(
            spec(str(landing), table=f"lost_{write_mode}", destination=destination, limits={"max_files_per_batch": 1}),
            activate=True,
        )
        proxy.drop_response = lambda method, path: method == "PUT" and COMMIT.search(path) is not None
        first = svc.runs.run_now(ing.name)
        proxy.drop_response = None
        second = svc.runs.run_now(ing.name)
        rows = DeltaTable(svc.embedded.table_uri(ing.spec.destination), storage_options=options).to_pyarrow_table()
        ledger = _ledger(svc, ing.id)
    finally:
        svc.close()
        proxy.close()
    assert any(entry[0] == "dropped" for entry in proxy.log), "the fault never happened"
    assert second.metrics.files_processed == 0, (first.message, second.message)
    assert set(ledger.values()) == {FileStatus.LOADED}, ledger
    expected = 15  # overwrite: only the run's first batch replaces
    assert (rows.num_rows, pc.count_distinct(rows.column("id")).as_py()) == (expected, expected), (
        first.status,
        first.message,
        second.message,
    )

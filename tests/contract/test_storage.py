"""One contract for every storage backend, run against the real thing: a folder, SeaweedFS (S3), Azurite (Azure Blob,
both path forms), fake-gcs-server (GCS) and an asyncssh SFTP server, all on loopback.

Files are written with the backend's own tools (`put`) and checked only through the
`Storage` protocol built by `open_storage`, as the pipeline uses it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.config import SourceConfig
from core.egress import EgressAllow
from core.errors import ConfigError, SourceChanged, SourceNotFound, StorageAuthError, StorageUnavailable
from core.guards import Guards, LocalRoots
from core.storage import Storage, open_storage
from core.storage.base import FileInfo, LazyClient
from core.storage.local import LocalStorage
from core.storage.s3 import S3Storage

if TYPE_CHECKING:
    from tests.services import Azurite, FakeGCS, SeaweedFS, SFTPServer

# The `seaweedfs` fixture comes from tests/services.py through tests/conftest.py
# (`from tests.services import *`). Until that conftest exists, load it as a plugin here.
if not (Path(__file__).resolve().parents[1] / "conftest.py").exists():
    pytest_plugins = ["tests.services"]

LOOPBACK = EgressAllow.parse(["127.0.0.1"])  # SeaweedFS runs on loopback


def guards(local_root: Path | None = None) -> Guards:
    return Guards(LocalRoots([str(local_root)] if local_root else []), LOOPBACK)


# -- the backend fixture -------------------------------------------------------------


@dataclass
class Backend:
    name: str
    storage: Storage
    put: Callable[[str, bytes], str]  # write `relpath` under the root, return its full path
    put_outside: Callable[[str, bytes], None]  # write into a sibling whose name starts like the root
    full_path: Callable[[str], str]
    truth: Callable[[str], tuple[int, datetime, str]]  # (size, modified, etag) from the native API
    missing: Callable[[], Storage]  # a source whose folder / bucket does not exist
    missing_name: str
    missing_word: str = "folder"  # what the missing-source message calls it


def _local_backend(tmp_path: Path) -> Backend:
    root = tmp_path / "landing"
    root.mkdir()

    def write(base: Path, rel: str, data: bytes) -> Path:
        target = base.joinpath(*rel.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return target

    def truth(rel: str) -> tuple[int, datetime, str]:
        st = os.stat(root.joinpath(*rel.split("/")))
        return st.st_size, datetime.fromtimestamp(st.st_mtime, UTC), f"{st.st_mtime_ns}-{st.st_size}"

    def put_outside(rel: str, data: bytes) -> None:
        write(tmp_path / "landing-old", rel, data)

    missing_dir = tmp_path / "does-not-exist"
    return Backend(
        name="local",
        storage=open_storage(SourceConfig(type="local", path=str(root)), guards(tmp_path)),
        put=lambda rel, data: str(write(root, rel, data)),
        put_outside=put_outside,
        full_path=lambda rel: str(root.joinpath(*rel.split("/"))),
        truth=truth,
        missing=lambda: open_storage(SourceConfig(type="local", path=str(missing_dir)), guards(tmp_path)),
        missing_name=str(missing_dir),
    )


def _s3_backend(server: SeaweedFS) -> Backend:
    bucket = server.new_bucket()
    client = server.client()
    prefix = "landing/"

    def put(rel: str, data: bytes) -> str:
        client.put_object(Bucket=bucket, Key=prefix + rel, Body=data)
        return f"s3://{bucket}/{prefix}{rel}"

    def truth(rel: str) -> tuple[int, datetime, str]:
        head = client.head_object(Bucket=bucket, Key=prefix + rel)
        return head["ContentLength"], head["LastModified"], head["ETag"].strip('"')

    missing_bucket = f"missing-{uuid.uuid4().hex[:12]}"
    return Backend(
        name="s3",
        storage=open_storage(server.source(bucket, prefix), guards()),
        put=put,
        put_outside=lambda rel, data: client.put_object(Bucket=bucket, Key="landing-old/" + rel, Body=data),
        full_path=lambda rel: f"s3://{bucket}/{prefix}{rel}",
        truth=truth,
        missing=lambda: open_storage(server.source(missing_bucket, prefix), guards()),
        missing_name=missing_bucket,
        missing_word="bucket",
    )


def _azure_backend(server: Azurite, form: str) -> Backend:
    container = server.new_container()
    service = server.service()
    prefix = "landing/"

    def truth(rel: str) -> tuple[int, datetime, str]:
        props = service.get_blob_client(container, prefix + rel).get_blob_properties()
        return props.size, props.last_modified, props.etag.strip('"')

    def put(rel: str, data: bytes) -> str:
        server.put(container, prefix + rel, data)
        return server.path(container, prefix + rel, form=form)

    missing_container = f"missing-{uuid.uuid4().hex[:12]}"
    return Backend(
        name=f"azure-{form}",
        storage=open_storage(server.source(container, prefix, form=form), guards()),
        put=put,
        put_outside=lambda rel, data: server.put(container, "landing-old/" + rel, data),
        full_path=lambda rel: server.path(container, prefix + rel, form=form),
        truth=truth,
        missing=lambda: open_storage(server.source(missing_container, prefix, form=form), guards()),
        missing_name=missing_container,
        missing_word="container",
    )


def _gcs_backend(server: FakeGCS) -> Backend:
    bucket = server.new_bucket()
    prefix = "landing/"

    def truth(rel: str) -> tuple[int, datetime, str]:
        blob = server.client().bucket(bucket).get_blob(prefix + rel)
        return blob.size, blob.updated, blob.etag

    def put(rel: str, data: bytes) -> str:
        server.put(bucket, prefix + rel, data)
        return f"gs://{bucket}/{prefix}{rel}"

    missing_bucket = f"missing-{uuid.uuid4().hex[:12]}"
    return Backend(
        name="gcs",
        storage=open_storage(server.source(bucket, prefix), guards()),
        put=put,
        put_outside=lambda rel, data: server.put(bucket, "landing-old/" + rel, data),
        full_path=lambda rel: f"gs://{bucket}/{prefix}{rel}",
        truth=truth,
        missing=lambda: open_storage(server.source(missing_bucket, prefix), guards()),
        missing_name=missing_bucket,
        missing_word="bucket",
    )


def _sftp_backend(server: SFTPServer) -> Backend:
    folder = f"t-{uuid.uuid4().hex[:12]}"
    base = server.root / folder
    root = base / "landing"
    root.mkdir(parents=True)

    def write(target_root: Path, rel: str, data: bytes) -> None:
        target = target_root.joinpath(*rel.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def put(rel: str, data: bytes) -> str:
        write(root, rel, data)
        return server.path(f"{folder}/landing/{rel}")

    def truth(rel: str) -> tuple[int, datetime, str]:
        st = os.stat(root.joinpath(*rel.split("/")))
        mtime = int(st.st_mtime)  # SFTP (v3) carries whole seconds
        return st.st_size, datetime.fromtimestamp(mtime, UTC), f"{mtime}-{st.st_size}"

    return Backend(
        name="sftp",
        storage=open_storage(server.source(f"{folder}/landing"), guards()),
        put=put,
        put_outside=lambda rel, data: write(base / "landing-old", rel, data),
        full_path=lambda rel: server.path(f"{folder}/landing/{rel}"),
        truth=truth,
        missing=lambda: open_storage(server.source(f"{folder}/does-not-exist"), guards()),
        missing_name=f"/{folder}/does-not-exist",
    )


@pytest.fixture(
    params=[
        "local",
        pytest.param("s3", marks=pytest.mark.s3),
        "azure-abfss",
        "azure-https",
        "gcs",
        "sftp",
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return _local_backend(tmp_path)
    if request.param.startswith("azure-"):
        return _azure_backend(request.getfixturevalue("azurite"), request.param.removeprefix("azure-"))
    if request.param == "gcs":
        return _gcs_backend(request.getfixturevalue("fake_gcs"))
    if request.param == "sftp":
        return _sftp_backend(request.getfixturevalue("sftp_server"))
    return _s3_backend(request.getfixturevalue("seaweedfs"))


def listed(storage: Storage, pattern: str | None = None) -> dict[str, FileInfo]:
    files = list(storage.list_files(pattern))
    paths = [f.path for f in files]
    assert len(paths) == len(set(paths)), f"duplicates in listing: {paths}"
    return {f.path: f for f in files}


def put_all(backend: Backend, rels: list[str]) -> None:
    for rel in rels:
        backend.put(rel, rel.encode())


# -- listing ---------------------------------------------------------------------------


def test_listing_reports_path_size_modified_and_etag(backend: Backend) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    backend.put("a.json", b'{"a": 1}\n')
    backend.put("sub/b.json", b'{"b": 22}\n')
    backend.put("empty.json", b"")
    backend.put_outside("x.json", b"{}")  # `landing-old/` must not leak into `landing/`
    after = datetime.now(UTC) + timedelta(seconds=5)

    files = listed(backend.storage)

    assert sorted(files) == sorted(backend.full_path(r) for r in ("a.json", "sub/b.json", "empty.json"))
    for rel, content in (("a.json", b'{"a": 1}\n'), ("sub/b.json", b'{"b": 22}\n'), ("empty.json", b"")):
        info = files[backend.full_path(rel)]
        size, modified, etag = backend.truth(rel)
        assert info.size == size == len(content)
        assert info.modified.utcoffset() == timedelta(0), "modified must be an aware UTC datetime"
        assert abs(info.modified - modified) < timedelta(milliseconds=1)
        assert before <= info.modified <= after
        assert info.etag == etag
        assert info.etag and '"' not in info.etag
        if backend.name == "s3":
            assert info.etag == hashlib.md5(content).hexdigest()


def test_etag_changes_when_a_file_is_rewritten(backend: Backend) -> None:
    path = backend.put("a.json", b'{"v": 1}\n')
    first = listed(backend.storage)[path]
    time.sleep(0.01)
    backend.put("a.json", b'{"v": 2, "more": true}\n')
    second = listed(backend.storage)[path]
    assert second.etag != first.etag
    assert second.size != first.size


def test_empty_source_lists_nothing(backend: Backend) -> None:
    assert list(backend.storage.list_files()) == []
    assert list(backend.storage.list_files("**/*.json")) == []


def test_incremental_listing_lists_only_paths_after_the_start(backend: Backend) -> None:
    """`start_after` (the last loaded path) lists what sorts after it in full-path order: '2026-12.json' sorts
    before '2026/...' ('-' < '/') and a folder wholly before the start is skipped, one holding it is entered."""
    rels = ["2026/11/30/a.json", "2026/11/30/b.json", "2026/12/01/a.json", "2026/12/01/c.csv", "2026-12.json", "z.json"]
    put_all(backend, rels)
    start = backend.full_path("2026/11/30/b.json")
    after = [backend.full_path(r) for r in ("2026/12/01/a.json", "2026/12/01/c.csv", "z.json")]
    assert sorted(f.path for f in backend.storage.list_files(start_after=start)) == after
    assert sorted(f.path for f in backend.storage.list_files("**/*.json", start_after=start)) == [after[0], after[2]]
    between = backend.full_path("2026/11/30/a.zzz")
    assert sorted(f.path for f in backend.storage.list_files(start_after=between)) == [start, *after]
    assert len(list(backend.storage.list_files(start_after=None))) == len(rels)
    assert list(backend.storage.list_files(start_after=backend.full_path("zz"))) == []


def test_pattern_without_slash_matches_top_level_only(backend: Backend) -> None:
    put_all(backend, ["a.json", "b.json", "sub/c.json", "sub/deep/d.json", "e.csv", "a.json.bak"])
    assert sorted(listed(backend.storage, "*.json")) == [backend.full_path("a.json"), backend.full_path("b.json")]


def test_double_star_pattern_is_recursive(backend: Backend) -> None:
    put_all(backend, ["top.csv", "x/y.csv", "x/y/z.csv", "x/y/z.json", "x/y.csv.gz"])
    expected = sorted(backend.full_path(r) for r in ("top.csv", "x/y.csv", "x/y/z.csv"))
    assert sorted(listed(backend.storage, "**/*.csv")) == expected


def test_wildcard_inside_a_file_name(backend: Backend) -> None:
    put_all(
        backend,
        [
            "data-2024-01.parquet",
            "data-2024-02.parquet",
            "data-2023-12.parquet",
            "data-2024-01.csv",
            "sub/data-2024-03.parquet",
        ],
    )
    expected = sorted(backend.full_path(r) for r in ("data-2024-01.parquet", "data-2024-02.parquet"))
    assert sorted(listed(backend.storage, "data-2024-*.parquet")) == expected


def test_patterns_with_a_literal_folder(backend: Backend) -> None:
    put_all(
        backend,
        [
            "2024/01/a.json",
            "2024/01/deeper/b.json",
            "2024/02/c.json",
            "2024/01x/d.json",
            "year=2024/m=1/e.json",
            "year=2024/f.json",
            "year=2025/g.json",
        ],
    )
    assert sorted(listed(backend.storage, "2024/01/*.json")) == [backend.full_path("2024/01/a.json")]
    assert sorted(listed(backend.storage, "2024/*/*.json")) == sorted(
        backend.full_path(r) for r in ("2024/01/a.json", "2024/02/c.json", "2024/01x/d.json")
    )
    assert sorted(listed(backend.storage, "year=2024/**/*.json")) == sorted(
        backend.full_path(r) for r in ("year=2024/m=1/e.json", "year=2024/f.json")
    )
    assert list(backend.storage.list_files("2030/*.json")) == []


def test_an_object_whose_key_ends_in_a_slash_with_data_is_skipped_and_named(backend: Backend) -> None:
    """A key ending in `/` is a folder to stores and Spark and is not read; one that holds bytes was left out
    without a word (an outside attack put data under such keys on S3, Azure and GCS). A folder marker without
    bytes stays unremarked. A file system has no such names."""
    if backend.name in ("local", "sftp"):
        pytest.skip("a file name cannot end in '/'")
    if backend.name == "s3":
        pytest.skip("SeaweedFS keeps no bytes under a key ending in '/' (it makes a folder of it): nothing to name")
    put_all(backend, ["ok.json", "sub/ok.json"])
    backend.put("marker/", b"")
    backend.put("data/", b'{"id": 1}\n')
    assert sorted(listed(backend.storage)) == sorted(backend.full_path(r) for r in ("ok.json", "sub/ok.json"))
    skipped = backend.storage.skipped
    assert list(skipped) == [backend.full_path("data/")], skipped
    assert "holds 10 bytes" in skipped[backend.full_path("data/")]


def test_hidden_files_and_folders_are_skipped(backend: Backend) -> None:
    put_all(
        backend,
        [
            "ok.json",
            "sub/ok.json",
            "_SUCCESS",
            ".tmp/x.json",
            "_temporary/0/part-0.json",
            "sub/.hidden.json",
            "sub/_partial.json",
            "sub/.cache/y.json",
        ],
    )
    expected = sorted(backend.full_path(r) for r in ("ok.json", "sub/ok.json"))
    assert sorted(listed(backend.storage)) == expected
    assert sorted(listed(backend.storage, "**/*.json")) == expected
    assert list(backend.storage.list_files(".tmp/*.json")) == []


def test_names_with_spaces_and_unicode(backend: Backend) -> None:
    rel = "dir with space/ünïcødé+plus=1 (copy).json"
    path = backend.put(rel, b"payload")
    files = listed(backend.storage, "**/*.json")
    assert list(files) == [path]
    with backend.storage.open(path) as stream:
        assert stream.read() == b"payload"


# -- reading -----------------------------------------------------------------------------


def test_open_returns_the_exact_bytes(backend: Backend) -> None:
    small = bytes(range(256)) * 3
    big = os.urandom(3 * 1024 * 1024 + 17)
    paths = {backend.put("small.bin", small): small, backend.put("big.bin", big): big, backend.put("e.bin", b""): b""}
    for path, content in paths.items():
        with backend.storage.open(path) as stream:
            assert stream.read() == content
        with backend.storage.open(path) as stream:  # sequential reads of n bytes
            chunks = []
            while chunk := stream.read(100_000):
                assert len(chunk) <= 100_000
                chunks.append(chunk)
            assert b"".join(chunks) == content


def test_open_seekable_supports_random_access(backend: Backend) -> None:
    content = os.urandom(1024 * 1024) + b"PAR1-footer-PAR1"
    path = backend.put("file.parquet", content)
    with backend.storage.open_seekable(path) as stream:
        assert stream.seekable()
        assert stream.tell() == 0
        assert stream.read(4) == content[:4]
        stream.seek(-16, os.SEEK_END)
        assert stream.read() == b"PAR1-footer-PAR1"
        stream.seek(0)
        assert stream.read(4) == content[:4]
        stream.seek(1000)
        assert stream.tell() == 1000
        assert stream.read(10) == content[1000:1010]
        stream.seek(0)
        assert stream.read() == content


def test_an_open_of_the_listed_version_reads_it_and_refuses_a_rewrite(backend: Backend) -> None:
    """The pipeline reads a file as the version its listing gave: a rewrite in between is refused by name, so the
    ledger never records one version's etag for another's rows (SFTP's etag has whole seconds, hence the size)."""
    path = backend.put("a.json", b'{"v": 1}\n')
    first = listed(backend.storage)[path]
    with backend.storage.open(path, first.etag) as stream:
        assert stream.read() == b'{"v": 1}\n'
    with backend.storage.open_seekable(path, first.etag) as stream:
        assert stream.read() == b'{"v": 1}\n'
    time.sleep(0.01)
    backend.put("a.json", b'{"v": 2, "longer": true}\n')
    for opener in (backend.storage.open, backend.storage.open_seekable):
        with pytest.raises(SourceChanged) as info:
            opener(path, first.etag)
        assert path in info.value.message and "next run" in info.value.action
        assert not info.value.transient
    second = listed(backend.storage)[path]
    with backend.storage.open(path, second.etag) as stream:
        assert stream.read() == b'{"v": 2, "longer": true}\n'
    with backend.storage.open(path) as stream:  # unpinned: the version there now
        assert stream.read() == b'{"v": 2, "longer": true}\n'


# -- errors ------------------------------------------------------------------------------


def test_missing_source_raises_source_not_found(backend: Backend) -> None:
    storage = backend.missing()
    with pytest.raises(SourceNotFound) as info:
        list(storage.list_files())
    assert backend.missing_name in info.value.message
    assert info.value.field == "source.path"
    assert backend.missing_word in info.value.message.lower()
    assert info.value.action
    assert not info.value.transient
    with pytest.raises(SourceNotFound):
        list(storage.list_files("**/*.json"))
    with pytest.raises(SourceNotFound):
        storage.check()


def test_missing_file_raises_source_not_found(backend: Backend) -> None:
    backend.put("present.json", b"{}")
    gone = backend.full_path("gone.json")
    with pytest.raises(SourceNotFound) as info:
        backend.storage.open(gone)
    assert "gone.json" in info.value.message
    with pytest.raises(SourceNotFound):
        backend.storage.open_seekable(gone)


def test_check_passes_on_a_healthy_source(backend: Backend) -> None:
    backend.storage.check()


# -- local only --------------------------------------------------------------------------


def test_local_root_that_is_a_file_is_a_terminal_error(tmp_path: Path) -> None:
    target = tmp_path / "file.json"
    target.write_text("{}")
    storage = LocalStorage(str(target), LocalRoots([str(tmp_path)]))
    with pytest.raises(ConfigError) as info:
        list(storage.list_files())
    assert "not a folder" in info.value.message
    assert not info.value.transient
    with pytest.raises(ConfigError):
        storage.check()


def test_local_relative_root_is_rejected() -> None:
    with pytest.raises(ConfigError):
        LocalStorage("relative/folder", LocalRoots(["/"]))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read any folder")
def test_local_unreadable_folder_is_an_auth_error(tmp_path: Path) -> None:
    root = tmp_path / "locked"
    root.mkdir()
    (root / "a.json").write_text("{}")
    root.chmod(0)
    try:
        with pytest.raises(StorageAuthError) as info:
            list(LocalStorage(str(root), LocalRoots([str(tmp_path)])).list_files())
        assert "permission" in info.value.message.lower()
    finally:
        root.chmod(0o755)


_LIST_AND_REPORT = """
import sys
from core.errors import AutoloaderError
from core.guards import LocalRoots
from core.storage.local import LocalStorage
listed = []
try:
    for info in LocalStorage(sys.argv[1], LocalRoots([sys.argv[1]])).list_files():
        listed.append(info.path)
except AutoloaderError as exc:
    print(type(exc).__name__, exc.message)
print(*listed)
"""


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_local_listing_names_the_first_unreadable_file_in_path_order() -> None:
    """A folder that can be read but not entered (r--): its names are listed, the status of each file fails. The
    listing yields the files before it, then names its first file in path order, as every run does, not the first
    the folder happens to hand out (an attack helper's find on 5d369c5). Run as `nobody` when the tests run as
    root, who may enter any folder."""
    base = Path(tempfile.mkdtemp(prefix="autoloader-perm-"))
    try:
        base.chmod(0o755)
        (base / "0.json").write_text("{}")
        locked = base / "locked"
        locked.mkdir()
        for index in range(20):
            (locked / f"f{index:02d}.json").write_text("{}")
        locked.chmod(0o644)
        command = [sys.executable, "-c", _LIST_AND_REPORT, str(base)]
        if os.geteuid() == 0:
            command = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", *command]
        repo = str(Path(__file__).resolve().parents[2])
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=repo,
            env={"PATH": os.environ["PATH"], "PYTHONPATH": repo},
        )
        error, listed = result.stdout.splitlines()
        assert error == f"StorageAuthError No permission to read the file {locked / 'f00.json'}", result.stderr
        assert listed == str(base / "0.json")
    finally:
        (base / "locked").chmod(0o755)
        shutil.rmtree(base)


def test_a_link_removed_while_the_listing_resolves_it_is_passed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attack helper deleted links while listings ran: `os.path.realpath` raised FileNotFoundError out of the
    listing (2 in ~2,100 runs) when a link went between its lstat and its readlink. That window cannot be hit on
    purpose, so realpath is made to fail for the one link, as it does then (a stand-in for the race)."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.json").write_text("{}")
    (root / "c.json").write_text("{}")
    (tmp_path / "outside.json").write_text("{}")
    os.symlink(tmp_path / "outside.json", root / "b.json")
    storage = LocalStorage(str(root), LocalRoots([str(root)]))
    real = os.path.realpath

    def racing(path: Any, *args: Any, **kwargs: Any) -> str:
        if str(path) == str(root / "b.json"):
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os.path, "realpath", racing)
    assert [Path(f.path).name for f in storage.list_files()] == ["a.json", "c.json"]
    assert storage.skipped == {}
    assert not storage.roots.contains(str(root / "b.json"))


def test_local_open_outside_the_root_is_refused(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "secret.txt").write_text("x")
    with pytest.raises(ConfigError):
        storage = LocalStorage(str(tmp_path / "root"), LocalRoots([str(tmp_path)]))
        storage.open(str(tmp_path / "root" / ".." / "secret.txt"))


def test_local_links_into_the_warehouse_are_not_followed(tmp_path: Path) -> None:
    """Found by an attack helper: a symbolic link in a source that led into the local warehouse (inside the roots)
    was followed, and every run loaded the table's own data files again."""
    warehouse, landing = tmp_path / "lake" / "warehouse", tmp_path / "lake" / "landing"
    (warehouse / "main" / "raw" / "t").mkdir(parents=True)
    (warehouse / "main" / "raw" / "t" / "part-0.parquet").write_bytes(b"PAR1")
    landing.mkdir()
    (landing / "a.json").write_text("{}")
    os.symlink(warehouse, landing / "more")
    os.symlink(warehouse / "main" / "raw" / "t" / "part-0.parquet", landing / "b.parquet")
    storage = LocalStorage(str(landing), LocalRoots([str(tmp_path)], excluded=[str(warehouse)]))
    assert [Path(f.path).name for f in storage.list_files()] == ["a.json"]
    assert set(storage.skipped) == {str(landing / "b.parquet"), str(landing / "more")}
    assert all(f"leads into the warehouse ({warehouse})" in why for why in storage.skipped.values())
    with pytest.raises(ConfigError, match="leads into the warehouse"):
        storage.open(str(landing / "more" / "main" / "raw" / "t" / "part-0.parquet"))


def test_the_local_warehouse_is_excluded_from_the_roots(settings: Any, tmp_path: Path) -> None:
    from app.bootstrap import build_guards

    root = tmp_path / "root"
    guards = build_guards(settings.model_copy(update={"local_roots": [root], "warehouse": str(root / "wh")}))
    assert guards.local_roots.excluded == (str(root / "wh"),)
    assert not guards.local_roots.contains(str(root / "wh" / "t"))


def test_local_lists_10000_files_in_order(tmp_path: Path) -> None:
    """The listing's speed is bench/bench_listing.py's to print (a timed assert here failed on a loaded machine:
    1,168 ms against a 500 ms bound in a fresh-clone run)."""
    root = tmp_path / "many"
    for d in range(100):
        folder = root / f"d{d:03d}"
        folder.mkdir(parents=True)
        for f in range(100):
            (folder / f"f{f:03d}.json").write_bytes(b"{}")
    storage = LocalStorage(str(root), LocalRoots([str(tmp_path)]))
    files = list(storage.list_files("**/*.json"))
    assert len(files) == 10_000
    assert [f.path for f in files] == sorted(f.path for f in files)


_NAMES = st.sampled_from(["a", "a-", "a.b", "a0", "b", "_c", ".d", "e f"])


@settings(max_examples=60, deadline=None)
@given(
    tree=st.lists(st.lists(_NAMES, min_size=1, max_size=3), min_size=1, max_size=12),
    start=st.one_of(st.none(), st.lists(_NAMES, min_size=1, max_size=3)),
)
def test_local_listing_is_in_full_path_order_with_folders_and_files_interleaved(
    tree: list[list[str]], start: list[str] | None
) -> None:
    """Names around "/" in byte order ("a-", "a.b", "a/", "a0") sort folders between files; the listing (a file's
    status read before its folder's entries are sorted) is the sorted list of visible files, from `start_after` on."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        for parts in tree:
            *folders, name = parts
            try:
                (root.joinpath(*folders)).mkdir(parents=True, exist_ok=True)
                (root.joinpath(*folders) / name).write_bytes(b"{}")
            except (FileExistsError, IsADirectoryError, NotADirectoryError):
                continue  # a name already taken by a folder or a file
        visible = sorted(
            str(path)
            for path in root.rglob("*")
            if path.is_file() and not any(part.startswith((".", "_")) for part in path.relative_to(root).parts)
        )
        after = None if start is None else str(root.joinpath(*start))
        storage = LocalStorage(str(root), LocalRoots([tmp]))
        listed = [f.path for f in storage.list_files(start_after=after)]
        assert listed == [path for path in visible if after is None or path > after]


# -- S3 only -----------------------------------------------------------------------------

s3 = pytest.mark.s3


@s3
def test_s3_listing_spans_pages_lazily_and_exactly_once(seaweedfs: SeaweedFS) -> None:
    bucket = seaweedfs.new_bucket()
    keys = [f"many/part-{i:05d}.json" for i in range(2500)]
    seaweedfs.put_many(bucket, [(k, b"{}") for k in keys] + [("other/x.json", b"{}"), ("many-x/y.json", b"{}")])
    storage = S3Storage(
        f"s3://{bucket}/many/",
        endpoint_url=seaweedfs.endpoint_url,
        region=seaweedfs.region,
        access_key_id=seaweedfs.access_key,
        secret_access_key=seaweedfs.secret_key,
        egress=LOOPBACK,
        page_size=1000,
    )
    calls: list[dict[str, Any]] = []
    storage.client.meta.events.register(
        "before-call.s3.ListObjectsV2", lambda params, **_: calls.append(params), unique_id="count-list-calls"
    )

    stream = storage.list_files()
    first = next(stream)
    assert first.path == f"s3://{bucket}/many/part-00000.json"
    assert len(calls) == 1, "the listing must stream page by page, not fetch everything first"
    rest = list(stream)

    paths = [first.path, *(f.path for f in rest)]
    assert len(calls) == 3
    assert len(paths) == 2500
    assert len(set(paths)) == 2500
    assert set(paths) == {f"s3://{bucket}/{k}" for k in keys}


@s3
def test_s3_directory_markers_are_not_files(seaweedfs: SeaweedFS) -> None:
    bucket = seaweedfs.new_bucket()
    client = seaweedfs.client()
    client.put_object(Bucket=bucket, Key="landing/folder/", Body=b"")
    client.put_object(Bucket=bucket, Key="landing/folder/a.json", Body=b"{}")
    client.put_object(Bucket=bucket, Key="landing/empty/", Body=b"")
    assert len(client.list_objects_v2(Bucket=bucket, Prefix="landing/")["Contents"]) == 3  # markers are listed
    storage = open_storage(seaweedfs.source(bucket, "landing/"), guards())
    assert [f.path for f in storage.list_files()] == [f"s3://{bucket}/landing/folder/a.json"]


@s3
def test_s3_root_without_trailing_slash_is_a_folder(seaweedfs: SeaweedFS) -> None:
    bucket = seaweedfs.new_bucket()
    seaweedfs.put_many(bucket, {"landing/a.json": b"{}", "landing-old/b.json": b"{}", "landingx.json": b"{}"})
    storage = open_storage(seaweedfs.source(bucket, "landing"), guards())
    assert storage.root == f"s3://{bucket}/landing/"
    assert [f.path for f in storage.list_files()] == [f"s3://{bucket}/landing/a.json"]
    assert [f.path for f in storage.list_files("*.json")] == [f"s3://{bucket}/landing/a.json"]
    whole_bucket = open_storage(seaweedfs.source(bucket, ""), guards())
    assert len(list(whole_bucket.list_files("**/*.json"))) == 3


@s3
def test_s3_wrong_secret_key_is_an_auth_error(seaweedfs: SeaweedFS) -> None:
    bucket = seaweedfs.new_bucket()
    wrong = "not-the-secret-" + uuid.uuid4().hex
    source = seaweedfs.source(
        bucket,
        "",
        credentials={"type": "access_key", "access_key_id": seaweedfs.access_key, "secret_access_key": wrong},
    )
    storage = open_storage(source, guards())
    with pytest.raises(StorageAuthError) as info:
        list(storage.list_files())
    error = info.value
    assert not error.transient
    assert "secret" in error.action.lower() or "access key" in error.action.lower()
    for text in (error.message, error.action, error.detail, str(error), repr(storage)):
        assert wrong not in text
    with pytest.raises(StorageAuthError):
        storage.open(f"s3://{bucket}/x.json")


@s3
def test_s3_unknown_access_key_is_an_auth_error(seaweedfs: SeaweedFS) -> None:
    bucket = seaweedfs.new_bucket()
    creds = {"type": "access_key", "access_key_id": "AKIAUNKNOWN", "secret_access_key": seaweedfs.secret_key}
    with pytest.raises(StorageAuthError) as info:
        list(open_storage(seaweedfs.source(bucket, "", credentials=creds), guards()).list_files())
    assert seaweedfs.secret_key not in str(info.value) + info.value.detail


@s3
def test_s3_closed_port_is_transient_and_fails_fast() -> None:
    from tests.services import free_port

    port = free_port()  # nothing listens there
    storage = S3Storage(
        "s3://bucket/prefix/",
        endpoint_url=f"http://127.0.0.1:{port}",
        region="us-east-1",
        access_key_id="a",
        secret_access_key="b",
        egress=LOOPBACK,
    )
    started = time.monotonic()
    with pytest.raises(StorageUnavailable) as info:
        list(storage.list_files())
    elapsed = time.monotonic() - started
    assert info.value.transient
    assert f"127.0.0.1:{port}" in info.value.message
    assert elapsed < 10, f"took {elapsed:.1f} s"
    with pytest.raises(StorageUnavailable):
        storage.open("s3://bucket/prefix/a.json")


@s3
def test_s3_ambient_credentials_come_from_the_environment(
    seaweedfs: SeaweedFS, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = seaweedfs.new_bucket()
    seaweedfs.put_many(bucket, {"a.json": b"{}"})
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs.secret_key)
    source = seaweedfs.source(bucket, "", credentials={"type": "ambient"})
    assert [f.path for f in open_storage(source, guards()).list_files()] == [f"s3://{bucket}/a.json"]


@s3
def test_s3_no_ambient_credentials_is_an_auth_error(
    seaweedfs: SeaweedFS, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    source = seaweedfs.source("any-bucket", "", credentials={"type": "ambient"})
    with pytest.raises(StorageAuthError) as info:
        list(open_storage(source, guards()).list_files())
    assert "credentials" in info.value.message.lower()
    assert "ambient" in info.value.action.lower()


@s3
def test_s3_endpoint_down_then_back(seaweedfs: SeaweedFS) -> None:
    bucket = seaweedfs.new_bucket()
    seaweedfs.put_many(bucket, {"a.json": b"{}"})
    storage = open_storage(seaweedfs.source(bucket, ""), guards())
    assert len(list(storage.list_files())) == 1
    with seaweedfs.down(kill=True):
        assert not seaweedfs.running
        with pytest.raises(StorageUnavailable):
            list(storage.list_files())
    assert seaweedfs.running
    assert [f.path for f in storage.list_files()] == [f"s3://{bucket}/a.json"]  # same data, same port


# -- ranged reads (the resume point of a broken read), every remote backend ---------------------


@pytest.mark.parametrize("name", ["azure-abfss", "gcs", "sftp", pytest.param("s3", marks=pytest.mark.s3)])
def test_open_from_returns_the_tail_and_nothing_past_the_end(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    backend = _remote_backend(name, request)
    content = os.urandom(2 * 1024 * 1024 + 5)
    path = backend.put("file.bin", content)
    open_from = backend.storage.open_from  # type: ignore[attr-defined]
    with open_from(path, 1_000_003) as stream:
        assert stream.read() == content[1_000_003:]
    with open_from(path, len(content)) as stream:
        assert stream.read() == b""
    with open_from(path, 0) as stream:
        assert stream.read() == content


@pytest.mark.parametrize("name", ["azure-abfss", "gcs", "sftp", pytest.param("s3", marks=pytest.mark.s3)])
def test_a_resumed_read_of_a_rewritten_file_is_refused(name: str, request: pytest.FixtureRequest) -> None:
    """The resume point of a broken read (RetryingStorage) continues the version read so far or raises: the first
    megabyte of one version is never joined to the rest of another."""
    backend = _remote_backend(name, request)
    old = os.urandom(2 * 1024 * 1024)
    path = backend.put("file.bin", old)
    version = listed(backend.storage)[path].etag
    open_from = backend.storage.open_from  # type: ignore[attr-defined]
    with open_from(path, 1_000_000, version) as stream:
        assert stream.read() == old[1_000_000:]
    time.sleep(0.01)
    new = os.urandom(2 * 1024 * 1024 + 1)
    backend.put("file.bin", new)
    with pytest.raises(SourceChanged) as info:
        open_from(path, 1_000_000, version)
    assert path in info.value.message
    with open_from(path, 1_000_000) as stream:
        assert stream.read() == new[1_000_000:]


@pytest.mark.parametrize("name", ["azure-abfss", "gcs", pytest.param("s3", marks=pytest.mark.s3)])
def test_a_read_gives_one_version_when_the_object_is_rewritten_part_way(
    name: str, request: pytest.FixtureRequest
) -> None:
    """The rest of a read started on one version is that version's, or the read raises SourceChanged: never the
    start of one joined to the rest of the other (fake-gcs-server served the new version's ranges). SFTP has no
    versions to pin (docs/RELIABILITY.md)."""
    backend = _remote_backend(name, request)
    old = os.urandom(9 * 1024 * 1024)
    path = backend.put("big.bin", old)
    with backend.storage.open(path) as stream:
        start = stream.read(100)
        backend.put("big.bin", os.urandom(9 * 1024 * 1024))
        try:
            rest = stream.read()
        except SourceChanged as exc:
            assert path in exc.message
        else:
            assert start + rest == old


def _remote_backend(name: str, request: pytest.FixtureRequest) -> Backend:
    if name.startswith("azure-"):
        return _azure_backend(request.getfixturevalue("azurite"), name.removeprefix("azure-"))
    if name == "gcs":
        return _gcs_backend(request.getfixturevalue("fake_gcs"))
    if name == "sftp":
        return _sftp_backend(request.getfixturevalue("sftp_server"))
    return _s3_backend(request.getfixturevalue("seaweedfs"))


def _no_secret_in(error: Exception, secret: str, storage: Storage) -> None:
    for text in (getattr(error, "message", ""), getattr(error, "action", ""), getattr(error, "detail", "")):
        assert secret not in text
    assert secret not in str(error)
    assert secret not in repr(storage)


# -- Azure only ----------------------------------------------------------------------------


def test_azure_listing_spans_pages_exactly_once(azurite: Azurite) -> None:
    from core.storage.azure import AzureBlobStorage

    container = azurite.new_container()
    container_client = azurite.service().get_container_client(container)
    names = [f"many/part-{i:03d}.json" for i in range(25)]
    for name in [*names, "other/x.json", "many-x/y.json"]:
        container_client.upload_blob(name, b"{}")
    storage = AzureBlobStorage(
        azurite.path(container, "many/"),
        egress=LOOPBACK,
        endpoint_url=azurite.endpoint_url,
        account_key=azurite.key,
        page_size=10,
    )
    requests: list[str] = []
    storage.client  # noqa: B018 - build the client, then count the list calls it sends
    pipeline_hook = storage._check_egress

    def counting(request: Any) -> None:
        if "comp=list" in request.http_request.url:
            requests.append(request.http_request.url)
        pipeline_hook(request)

    storage._check_egress = counting  # type: ignore[method-assign]
    storage._client = LazyClient(storage._make_client)  # rebuilt with the counting hook
    paths = [f.path for f in storage.list_files()]
    assert paths == [azurite.path(container, n) for n in names]
    assert len(requests) == 3, "25 blobs in pages of 10"


def test_azure_wrong_account_key_is_an_auth_error_naming_the_account(azurite: Azurite) -> None:
    container = azurite.new_container()
    wrong = base64.b64encode(os.urandom(64)).decode()
    source = azurite.source(container, "landing/", credentials={"type": "account_key", "account_key": wrong})
    storage = open_storage(source, guards())
    with pytest.raises(StorageAuthError) as info:
        list(storage.list_files())
    error = info.value
    assert not error.transient
    assert azurite.account in error.message and container in error.message
    assert "account key" in error.action.lower()
    assert error.field == "source.credentials"
    _no_secret_in(error, wrong, storage)
    with pytest.raises(StorageAuthError):
        storage.open(azurite.path(container, "landing/x.json"))


def test_azure_connection_string_and_sas_credentials(azurite: Azurite) -> None:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    container = azurite.new_container()
    azurite.put(container, "in/a.json", b'{"a": 1}')
    expected = [azurite.path(container, "in/a.json")]
    by_string = azurite.source(
        container, "in/", credentials={"type": "connection_string", "connection_string": azurite.connection_string}
    )
    assert [f.path for f in open_storage(by_string, guards()).list_files()] == expected
    sas = generate_container_sas(
        azurite.account,
        container,
        account_key=azurite.key,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    by_sas = azurite.source(container, "in/", credentials={"type": "sas", "sas_token": sas})
    storage = open_storage(by_sas, guards())
    assert [f.path for f in storage.list_files()] == expected
    with storage.open(expected[0]) as stream:
        assert stream.read() == b'{"a": 1}'
    read_only = generate_container_sas(
        azurite.account,
        container,
        account_key=azurite.key,
        permission=ContainerSasPermissions(read=True),  # no list
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    no_list = open_storage(
        azurite.source(container, "in/", credentials={"type": "sas", "sas_token": read_only}), guards()
    )
    with pytest.raises(StorageAuthError):
        list(no_list.list_files())


def test_azure_closed_port_is_transient() -> None:
    from core.storage.azure import AzureBlobStorage
    from tests.services import AZURITE_KEY, free_port

    storage = AzureBlobStorage(
        "abfss://c@devstoreaccount1.dfs.core.windows.net/p/",
        egress=LOOPBACK,
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        account_key=AZURITE_KEY,
    )
    with pytest.raises(StorageUnavailable) as info:
        list(storage.list_files())
    assert info.value.transient and "devstoreaccount1" in info.value.message


def test_azure_endpoint_on_loopback_is_refused_without_an_egress_exception(azurite: Azurite) -> None:
    from core.egress import EgressRefused

    with pytest.raises(EgressRefused):
        open_storage(azurite.source("c", ""), Guards(LocalRoots([]), EgressAllow()))
    source = azurite.source(
        "c",
        "",
        endpoint_url=None,
        credentials={"type": "connection_string", "connection_string": azurite.connection_string},
    )
    storage = open_storage(source, Guards(LocalRoots([]), EgressAllow()))  # the blob endpoint is in the string
    with pytest.raises(EgressRefused):
        list(storage.list_files())


# -- GCS only ------------------------------------------------------------------------------


def test_gcs_listing_spans_pages_exactly_once(fake_gcs: FakeGCS) -> None:
    from core.storage.gcs import GCSStorage

    bucket = fake_gcs.new_bucket()
    names = [f"many/part-{i:03d}.json" for i in range(25)]
    for name in [*names, "other/x.json", "many-x/y.json"]:
        fake_gcs.put(bucket, name, b"{}")
    storage = GCSStorage(
        f"gs://{bucket}/many/", egress=LOOPBACK, endpoint_url=fake_gcs.endpoint_url, anonymous=True, page_size=10
    )
    seen: list[str] = []
    original = storage._check_egress

    def counting(url: str) -> None:
        seen.append(url)
        original(url)

    storage._check_egress = counting  # type: ignore[method-assign]
    paths = [f.path for f in storage.list_files()]
    assert paths == [f"gs://{bucket}/{n}" for n in names]
    assert len([u for u in seen if "/o?" in u or u.endswith("/o")]) == 3, seen


def test_gcs_refused_service_account_is_an_auth_error_naming_the_bucket(fake_gcs: FakeGCS) -> None:
    """The key is refused by its token server (see `refused_service_account_key`)."""
    import json

    from core.egress import EgressRefused
    from tests.services import refused_service_account_key

    with refused_service_account_key() as key_file:
        bucket = fake_gcs.new_bucket()
        source = fake_gcs.source(bucket, "", credentials={"type": "service_account", "service_account_json": key_file})
        storage = open_storage(source, guards())
        with pytest.raises(StorageAuthError) as info:
            list(storage.list_files())
        assert bucket in info.value.message
        assert "service account" in info.value.action.lower()
        assert not info.value.transient
        _no_secret_in(info.value, json.loads(key_file)["private_key"].splitlines()[1], storage)
        # the key file's token server is an outbound connection: refused where the egress rule refuses
        strict = open_storage(source.model_copy(update={"endpoint_url": None}), Guards(LocalRoots([]), EgressAllow()))
        with pytest.raises(EgressRefused):
            list(strict.list_files())


def test_gcs_bad_key_file_and_anonymous_without_emulator_are_config_errors(fake_gcs: FakeGCS) -> None:
    bad = fake_gcs.source("b", "", credentials={"type": "service_account", "service_account_json": "{not json"})
    with pytest.raises(ConfigError) as info:
        list(open_storage(bad, guards()).list_files())
    assert "service account" in info.value.message.lower()
    with pytest.raises(ConfigError) as info:
        open_storage(fake_gcs.source("b", "", endpoint_url=None), guards())
    assert "emulator" in info.value.message.lower()


def test_gcs_closed_port_is_transient() -> None:
    from core.storage.gcs import GCSStorage
    from tests.services import free_port

    storage = GCSStorage("gs://b/p/", egress=LOOPBACK, endpoint_url=f"http://127.0.0.1:{free_port()}", anonymous=True)
    with pytest.raises(StorageUnavailable) as info:
        list(storage.list_files())
    assert info.value.transient


# -- SFTP only -----------------------------------------------------------------------------


def _sftp_folder(server: SFTPServer, files: dict[str, bytes]) -> str:
    folder = f"t-{uuid.uuid4().hex[:12]}"
    for rel, data in files.items():
        target = server.root / folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return folder


def test_sftp_private_key_authentication(sftp_server: SFTPServer) -> None:
    folder = _sftp_folder(sftp_server, {"a.json": b"{}"})
    storage = open_storage(sftp_server.source(folder, key=True), guards())
    assert [f.path for f in storage.list_files()] == [sftp_server.path(f"{folder}/a.json")]


def test_sftp_wrong_password_is_an_auth_error_naming_user_and_host(sftp_server: SFTPServer) -> None:
    from tests.services import SFTP_USER

    folder = _sftp_folder(sftp_server, {"a.json": b"{}"})
    wrong = "wrong-" + uuid.uuid4().hex
    source = sftp_server.source(folder, credentials={"type": "password", "username": SFTP_USER, "password": wrong})
    storage = open_storage(source, guards())
    with pytest.raises(StorageAuthError) as info:
        list(storage.list_files())
    error = info.value
    assert SFTP_USER in error.message and f"127.0.0.1:{sftp_server.port}" in error.message
    assert "password" in error.action.lower()
    assert not error.transient
    _no_secret_in(error, wrong, storage)


def test_sftp_changed_host_key_is_refused_naming_both_fingerprints(sftp_server: SFTPServer, tmp_path: Path) -> None:
    from core.storage.sftp import HostKeyMismatch
    from tests.services import SFTPServer as Server

    impostor = Server(tmp_path / "impostor")
    impostor.start()
    try:
        (impostor.root / "in").mkdir()
        source = impostor.source("in", host_key_fingerprint=sftp_server.fingerprint)  # the pin of the real one
        storage = open_storage(source, guards())
        with pytest.raises(HostKeyMismatch) as info:
            list(storage.list_files())
        error = info.value
        assert isinstance(error, StorageAuthError) and not error.transient
        assert sftp_server.fingerprint in error.message and impostor.fingerprint in error.message
        assert "fingerprint" in error.action.lower()
        assert error.field == "source.host_key_fingerprint"
    finally:
        impostor.stop()


def test_sftp_unpinned_host_key_is_refused_and_shown(sftp_server: SFTPServer) -> None:
    from core.storage.sftp import HostKeyNotPinned, SFTPStorage

    folder = _sftp_folder(sftp_server, {"a.json": b"{}"})
    storage = open_storage(sftp_server.source(folder, host_key_fingerprint=None), guards())
    assert isinstance(storage, SFTPStorage)
    with pytest.raises(HostKeyNotPinned) as info:
        storage.check()
    assert info.value.fingerprint == sftp_server.fingerprint
    assert sftp_server.fingerprint in info.value.message
    assert storage.server_fingerprint() == sftp_server.fingerprint  # what Test Connection shows


def test_sftp_paths_outside_the_folder_are_refused(sftp_server: SFTPServer) -> None:
    folder = _sftp_folder(sftp_server, {"in/a.json": b"{}", "secret.txt": b"no"})
    storage = open_storage(sftp_server.source(f"{folder}/in"), guards())
    for path in (
        sftp_server.path(f"{folder}/in/../secret.txt"),
        "../secret.txt",
        f"sftp://other-host:{sftp_server.port}/{folder}/in/a.json",
    ):
        with pytest.raises(ConfigError):
            storage.open(path)


def test_sftp_symbolic_links_are_named_and_not_followed(sftp_server: SFTPServer) -> None:
    """SFTP passed over every link without a word (an outside attack); following them instead loaded a file twice
    (through the link and its target, across incremental runs too) and read outside the folder through a link
    swapped after the listing (the next attack). Every link is named in `skipped`, none is listed."""
    folder = _sftp_folder(sftp_server, {"in/a.json": b"{}", "in/data/b.json": b"{}", "secret.json": b"{}"})
    base = sftp_server.root / folder
    (base / "in/linked.json").symlink_to(base / "in/a.json")
    (base / "in/more").symlink_to(base / "in/data")
    (base / "in/data/back").symlink_to(base / "in")
    (base / "in/out.json").symlink_to(base / "secret.json")
    (base / "in/dangling.json").symlink_to(base / "in/nothing.json")
    (base / "in/.hidden-link").symlink_to(base / "in/a.json")
    storage = open_storage(sftp_server.source(f"{folder}/in"), guards())
    names = sorted(info.path.rsplit(f"{folder}/in/", 1)[1] for info in storage.list_files("**/*.json"))
    assert names == ["a.json", "data/b.json"]
    skipped = {path.rsplit(f"{folder}/in/", 1)[1]: reason for path, reason in storage.skipped.items()}
    assert set(skipped) == {"linked.json", "more", "data/back", "out.json", "dangling.json"}
    assert all("symbolic link, which an SFTP source does not follow" in reason for reason in skipped.values())


def test_sftp_host_on_loopback_is_refused_without_an_egress_exception(sftp_server: SFTPServer) -> None:
    from core.egress import EgressRefused

    with pytest.raises(EgressRefused):
        open_storage(sftp_server.source("x"), Guards(LocalRoots([]), EgressAllow()))


def test_sftp_closed_port_is_transient() -> None:
    from core.storage.sftp import SFTPStorage
    from tests.services import free_port

    storage = SFTPStorage(f"sftp://127.0.0.1:{free_port()}/data", egress=LOOPBACK, username="u", password="p")
    with pytest.raises(StorageUnavailable) as info:
        list(storage.list_files())
    assert info.value.transient and "127.0.0.1" in info.value.message


def test_sftp_connection_ends_with_the_storage(sftp_server: SFTPServer) -> None:
    """A run drops its storage without closing it: the SSH connection must not outlive it (one leak per run)."""
    import gc

    from core.storage.sftp import SFTPStorage

    folder = _sftp_folder(sftp_server, {"a.json": b"{}"})
    storage = open_storage(sftp_server.source(folder), guards())
    assert isinstance(storage, SFTPStorage)
    with storage.open(next(iter(storage.list_files())).path) as stream:
        assert stream.read() == b"{}"
    transport = storage._session.transport
    assert transport.is_active()
    del storage, stream  # a run drops both when it ends
    gc.collect()
    deadline = time.monotonic() + 5
    while transport.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not transport.is_active() and not transport.is_alive()


@pytest.mark.parametrize("name", ["azure", "gcs"])
def test_one_level_pattern_does_not_page_through_sub_folders(name: str, request: pytest.FixtureRequest) -> None:
    """`*.json` can only match at the top: the deeper names are grouped away by the server (delimiter), so 30
    files in a sub-folder cost no listing pages (4 pages of 10 without the delimiter)."""
    from core.storage.azure import AzureBlobStorage
    from core.storage.gcs import GCSStorage

    deep = {f"in/deep/part-{i:03d}.json": b"{}" for i in range(30)}
    files = {"in/a.json": b"{}", "in/b.csv": b"x", **deep}
    pages: list[str] = []
    storage: AzureBlobStorage | GCSStorage
    if name == "azure":
        azurite: Azurite = request.getfixturevalue("azurite")
        container = azurite.new_container()
        for key, data in files.items():
            azurite.put(container, key, data)
        storage = AzureBlobStorage(
            azurite.path(container, "in/"),
            egress=LOOPBACK,
            endpoint_url=azurite.endpoint_url,
            account_key=azurite.key,
            page_size=10,
        )
        expected = [azurite.path(container, "in/a.json")]
    else:
        fake_gcs: FakeGCS = request.getfixturevalue("fake_gcs")
        bucket = fake_gcs.new_bucket()
        for key, data in files.items():
            fake_gcs.put(bucket, key, data)
        storage = GCSStorage(
            f"gs://{bucket}/in/", egress=LOOPBACK, endpoint_url=fake_gcs.endpoint_url, anonymous=True, page_size=10
        )
        expected = [f"gs://{bucket}/in/a.json"]
    original = storage._check_egress

    def counting(target: Any) -> None:
        url = target if isinstance(target, str) else target.http_request.url
        if "comp=list" in url or "/o?" in url:
            pages.append(url)
        original(target)

    storage._check_egress = counting  # type: ignore[method-assign]
    assert [f.path for f in storage.list_files("*.json")] == expected
    assert len(pages) == 1, pages
    pages.clear()
    assert len(list(storage.list_files("**/*.json"))) == 31
    assert len(pages) == 4


def test_azure_endpoint_down_is_transient_then_back(azurite: Azurite) -> None:
    """Azurite stopped: the listing fails as transient (the run retries); started again: the same storage lists."""
    container = azurite.new_container()
    azurite.put(container, "in/a.json", b"{}")
    storage = open_storage(azurite.source(container, "in/"), guards())
    assert len(list(storage.list_files())) == 1
    with azurite.down():
        with pytest.raises(StorageUnavailable) as info:
            list(storage.list_files())
        assert info.value.transient and azurite.account in info.value.message
    assert [f.path for f in storage.list_files()] == [azurite.path(container, "in/a.json")]


def test_s3_listing_timestamps_are_parsed_exactly_as_botocore_does() -> None:
    """The listing parses LastModified with the standard library (core.storage.s3.iso_timestamp, 2x faster over
    100,000 objects); it must give botocore's own answer for the forms S3 servers send, and read a time without
    an offset as UTC (S3's zone) where botocore leaves it naive."""
    from botocore.utils import parse_timestamp

    from core.storage.s3 import iso_timestamp

    sent = [
        "2026-12-01T02:33:12.000Z",
        "2026-12-01T02:33:12Z",
        "2026-12-01T02:33:12.123456+02:00",
        "Tue, 01 Dec 2026 02:33:12 GMT",
    ]
    for text in sent:
        assert iso_timestamp(text) == parse_timestamp(text), text
    assert iso_timestamp("2026-12-01T02:33:12") == parse_timestamp("2026-12-01T02:33:12").replace(tzinfo=UTC)

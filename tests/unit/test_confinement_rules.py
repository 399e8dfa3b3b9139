"""Local sources read only under the allowed roots (core/guards.py, core/storage/local.py): `..`, symbolic links
to a file or a folder, /proc and /etc are judged by where they lead; a root may not hold the server's own files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.config import IngestionSpec
from core.egress import EgressAllow
from core.errors import ConfigError, SourceNotFound
from core.guards import Guards, LocalRoots
from core.storage.local import LocalStorage
from tests.helpers import spec


@pytest.fixture(autouse=True, params=["o_path", "resolve_first"])
def open_route(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every rule holds on both routes of LocalStorage.open: Linux's O_PATH descriptor, and the real path resolved
    first (other systems, or no O_PATH)."""
    if request.param == "resolve_first":
        monkeypatch.setattr("core.storage.local._O_PATH", 0)


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """A root with one good file, and a sibling folder outside it holding a secret."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "in").mkdir(parents=True)
    outside.mkdir()
    (root / "in" / "good.json").write_text('{"id": 1}\n')
    (outside / "secret.json").write_text('{"secret": "TOPSECRET"}\n')
    return root, outside


def test_contains_judges_real_paths(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    roots = LocalRoots([str(root)])
    assert roots.contains(str(root)) and roots.contains(str(root / "in" / "good.json"))
    assert roots.contains(str(root / "not-yet" / "x.json"))
    assert not roots.contains(f"{root}/../outside/secret.json")
    assert not roots.contains(f"{root}-old/x.json")  # a sibling whose name starts like the root
    assert not roots.contains("/etc/passwd")
    assert not roots.contains("/proc/self/environ")
    (root / "link").symlink_to(outside)
    assert not roots.contains(str(root / "link" / "secret.json"))


def test_a_root_given_through_a_symlink_is_its_target(tmp_path: Path, layout: tuple[Path, Path]) -> None:
    root, _ = layout
    (tmp_path / "alias").symlink_to(root)
    roots = LocalRoots([str(tmp_path / "alias")])
    assert roots.roots == (str(root.resolve()),)
    assert roots.contains(str(root / "in" / "good.json"))


@pytest.mark.parametrize("path", ["/etc", "/proc/self", "/", "ROOT/../outside", "ROOT/in/../../outside"])
def test_a_source_folder_outside_the_roots_is_refused(layout: tuple[Path, Path], path: str) -> None:
    root, _ = layout
    path = path.replace("ROOT", str(root))
    with pytest.raises(ConfigError) as info:
        LocalStorage(path, LocalRoots([str(root)]))
    error = info.value
    assert error.field == "source.path" and str(root) in error.message and "AUTOLOADER_LOCAL_ROOTS" in error.action


def test_a_symlinked_source_folder_that_leads_out_is_refused(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    (root / "escape").symlink_to(outside)
    with pytest.raises(ConfigError, match="outside the folders local sources may read"):
        LocalStorage(str(root / "escape"), LocalRoots([str(root)]))


def test_symlinks_that_lead_out_are_skipped_with_a_reason(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    (root / "in" / "file-link.json").symlink_to(outside / "secret.json")
    (root / "in" / "dir-link").symlink_to(outside)
    (root / "in" / "environ.json").symlink_to("/proc/self/environ")
    (root / "in" / "passwd.json").symlink_to("/etc/passwd")
    (root / "in" / "inside-link.json").symlink_to(root / "in" / "good.json")
    storage = LocalStorage(str(root / "in"), LocalRoots([str(root)]))

    listed = [f.path for f in storage.list_files("**/*.json")]

    assert listed == [str(root / "in" / "good.json"), str(root / "in" / "inside-link.json")]
    assert sorted(storage.skipped) == sorted(
        str(root / "in" / name) for name in ("dir-link", "environ.json", "file-link.json", "passwd.json")
    )
    assert all("AUTOLOADER_LOCAL_ROOTS" in reason for reason in storage.skipped.values())


def test_a_pattern_whose_folder_leads_out_is_skipped(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    (root / "in" / "dir-link").symlink_to(outside)
    storage = LocalStorage(str(root / "in"), LocalRoots([str(root)]))
    assert list(storage.list_files("dir-link/*.json")) == []
    assert list(storage.skipped) == [str(root / "in" / "dir-link")]


@pytest.mark.parametrize(
    "target", ["ROOT/in/link.json", "ROOT/in/dir-link/secret.json", "ROOT/in/../../outside/secret.json"]
)
def test_opening_a_path_that_leads_out_is_refused_without_reading_it(layout: tuple[Path, Path], target: str) -> None:
    root, outside = layout
    (root / "in" / "link.json").symlink_to(outside / "secret.json")
    (root / "in" / "dir-link").symlink_to(outside)
    storage = LocalStorage(str(root / "in"), LocalRoots([str(root)]))
    with pytest.raises(ConfigError) as info:
        storage.open(target.replace("ROOT", str(root)))
    assert "TOPSECRET" not in info.value.message + info.value.action + info.value.detail


def test_what_was_opened_is_checked_on_the_descriptor(layout: tuple[Path, Path]) -> None:
    """A folder swapped for a link between the path check and the open: the descriptor's real path decides."""
    root, outside = layout
    storage = LocalStorage(str(root / "in"), LocalRoots([str(root)]))
    fd = os.open(outside / "secret.json", os.O_RDONLY)
    try:
        with pytest.raises(ConfigError, match="leads outside"):
            storage._verify_opened(fd, str(root / "in" / "good.json"))
    finally:
        os.close(fd)


def test_a_fifo_is_neither_listed_nor_opened_and_does_not_hang(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    os.mkfifo(root / "in" / "pipe.json")
    storage = LocalStorage(str(root / "in"), LocalRoots([str(root)]))
    assert [f.path for f in storage.list_files()] == [str(root / "in" / "good.json")]
    with pytest.raises(ConfigError, match="not a regular file"):
        storage.open(str(root / "in" / "pipe.json"))


def test_a_dangling_link_out_of_the_roots_is_named_as_leading_outside(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    (root / "in" / "gone.json").symlink_to(outside / "not-there.json")
    (root / "in" / "gone-inside.json").symlink_to(root / "in" / "not-there.json")
    storage = LocalStorage(str(root / "in"), LocalRoots([str(root)]))
    with pytest.raises(ConfigError, match="leads outside"):
        storage.open(str(root / "in" / "gone.json"))
    with pytest.raises(SourceNotFound, match="does not exist"):
        storage.open(str(root / "in" / "gone-inside.json"))


def test_links_that_stay_inside_the_roots_are_read(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    (root / "in" / "file-link.json").symlink_to(root / "in" / "good.json")
    (root / "in" / "dir-link").symlink_to(root / "in")
    storage = LocalStorage(str(root / "in"), LocalRoots([str(root)]))
    for path in ("file-link.json", "dir-link/good.json", "dir-link/file-link.json"):
        with storage.open(str(root / "in" / path)) as stream:
            assert stream.read() == b'{"id": 1}\n'


def test_a_good_file_under_the_root_is_read(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    storage = LocalStorage(str(root / "in"), LocalRoots([str(root)]))
    with storage.open(str(root / "in" / "good.json")) as stream:
        assert stream.read() == b'{"id": 1}\n'


@pytest.mark.parametrize("root", ["DATA", "DATA/..", "/"])
def test_a_root_holding_the_data_dir_is_refused(tmp_path: Path, root: str) -> None:
    data = tmp_path / "state" / "data"
    data.mkdir(parents=True)
    roots = LocalRoots([root.replace("DATA", str(data))])
    with pytest.raises(ConfigError) as info:
        roots.refuse_unsafe({"the data directory": str(data)})
    assert "AUTOLOADER_LOCAL_ROOTS" in info.value.message and info.value.field == "AUTOLOADER_LOCAL_ROOTS"


def test_a_root_holding_the_database_file_or_a_system_tree_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "db" / "meta.db"
    with pytest.raises(ConfigError, match="the metadata database"):
        LocalRoots([str(tmp_path / "db")]).refuse_unsafe({"the metadata database": str(db)})
    for tree in ("/proc", "/sys/kernel", "/dev"):
        with pytest.raises(ConfigError, match="system folder"):
            LocalRoots([tree]).refuse_unsafe({})
    LocalRoots([str(tmp_path / "landing")]).refuse_unsafe({"the metadata database": str(db)})


def test_a_root_inside_the_data_dir_is_allowed(tmp_path: Path) -> None:
    """The default root, <data_dir>/landing, does not hold the data dir's own files."""
    data = tmp_path / "data"
    LocalRoots([str(data / "landing")]).refuse_unsafe({"the data directory": str(data)})


def test_check_spec_refuses_a_local_path_an_endpoint_and_a_webhook(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    guards = Guards(LocalRoots([str(root)]), EgressAllow())
    guards.check_spec(spec(str(root / "in")))
    with pytest.raises(ConfigError) as outside:
        guards.check_spec(spec("/etc"))
    assert outside.value.field == "source.path"
    webhook = spec(str(root / "in"), quality={"webhook_url": "http://127.0.0.1:9/hook"})
    with pytest.raises(ConfigError) as hook:
        guards.check_spec(webhook)
    assert hook.value.field == "quality.webhook_url"
    s3 = IngestionSpec.model_validate(
        {
            "name": "s3",
            "source": {"type": "s3", "path": "s3://b/p/", "endpoint_url": "http://169.254.169.254"},
            "format": {"type": "json"},
            "destination": {"table": "t"},
        }
    )
    with pytest.raises(ConfigError, match="cloud metadata") as endpoint:
        guards.check_spec(s3)
    assert endpoint.value.field == "source.endpoint_url"

"""The Spark jar cache: offline when complete, a clear error naming the artifact when a fetch fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import spark_jars
from app.spark_jars import JarFetchFailed, artifacts, ensure_jars, jar_folder


def test_a_complete_cache_needs_no_maven(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = jar_folder(tmp_path)
    folder.mkdir(parents=True)
    for artifact in artifacts():
        (folder / artifact.file_name).write_bytes(b"jar")
    monkeypatch.setenv("PATH", "")  # no mvn on the PATH: any fetch would fail
    assert [p.name for p in ensure_jars(tmp_path)] == [a.file_name for a in artifacts()]


def test_a_version_change_fetches_into_a_new_folder(tmp_path: Path) -> None:
    assert jar_folder(tmp_path, ("a:b:1",)) != jar_folder(tmp_path, ("a:b:2",))


@pytest.mark.slow
def test_a_failed_fetch_names_the_artifact_and_leaves_no_partial_jar(tmp_path: Path) -> None:
    """Real mvn against Maven Central, for an artifact that does not exist."""
    if spark_jars.shutil.which("mvn") is None:
        pytest.skip("mvn not installed")
    missing = ("org.autoloader.nonexistent:no-such-jar:0.0.1",)
    with pytest.raises(JarFetchFailed) as info:
        ensure_jars(tmp_path, missing)
    assert "org.autoloader.nonexistent:no-such-jar:0.0.1" in info.value.message
    assert "Maven Central" in info.value.action
    assert list(jar_folder(tmp_path, missing).iterdir()) == []

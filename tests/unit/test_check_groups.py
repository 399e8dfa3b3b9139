"""Which files the pipeline checks against an existing table in groups and which alone
(core/engines/inference.check_groups): a group must read as much of each file as inferring it alone would."""

from __future__ import annotations

from datetime import UTC, datetime

from core.config import FormatConfig
from core.engines.inference import CHECK_GROUP_FILES, check_groups
from core.storage.base import FileInfo


def info(name: str, size: int) -> FileInfo:
    return FileInfo(path=f"/in/{name}", size=size, modified=datetime(2026, 1, 1, tzinfo=UTC))


def names(files: list[FileInfo]) -> list[str]:
    return [f.path.rsplit("/", 1)[1] for f in files]


def test_small_plain_text_files_are_grouped_large_and_compressed_ones_alone() -> None:
    files = [info("a.json", 100), info("big.json", 10_000_000), info("b.json.gz", 100), info("c.json", 200)]
    groups, alone = check_groups(files, FormatConfig.model_validate({"type": "json"}))
    assert [names(g) for g in groups] == [["a.json", "c.json"]]
    assert names(alone) == ["big.json", "b.json.gz"]


def test_an_explicit_codec_infers_every_file_alone() -> None:
    files = [info("a.csv", 100), info("b.csv", 100)]
    groups, alone = check_groups(
        files, FormatConfig.model_validate({"type": "csv", "options": {"compression": "gzip"}})
    )
    assert groups == [] and names(alone) == ["a.csv", "b.csv"]


def test_formats_with_the_schema_in_the_file_group_at_any_size_in_bounded_groups() -> None:
    files = [info(f"p{n}.parquet", 10_000_000) for n in range(CHECK_GROUP_FILES + 5)]
    groups, alone = check_groups(files, FormatConfig.model_validate({"type": "parquet"}))
    assert [len(g) for g in groups] == [CHECK_GROUP_FILES, 5] and alone == []

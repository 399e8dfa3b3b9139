"""How the Spark engine's parquet format reads back a staged batch's partition folders (no cluster needed: the
folder names are the ones Spark 4.2 wrote in test_awkward_partition_values_keep_their_rows)."""

from __future__ import annotations

import pytest

from core.engines.spark.parquet import committed_from_partitions, folder_values
from core.errors import TableError

STAGING = "file:/w/t/_autoloader_staging/app-1"


@pytest.mark.parametrize(
    ("folder", "value"),
    [
        ("part=a%2Fb", "a/b"),
        ("part=x y", "x y"),
        ("part=50%25", "50%"),
        ("part=%252F", "%2F"),
        ("part=k%3Dv", "k=v"),
        ("part=café", "café"),
        ("part=007", "007"),
        ("part=1.10", "1.10"),
        ("part=__HIVE_DEFAULT_PARTITION__", None),
    ],
)
def test_a_folder_name_gives_back_the_value_as_text(folder: str, value: str | None) -> None:
    assert folder_values(f"{STAGING}/{folder}", ["part"]) == {"part": value}


def test_several_columns_are_read_from_the_innermost_folders_in_order() -> None:
    folder = f"{STAGING}/Country=DE/day=2024-01-01 00%3A00%3A00"
    assert folder_values(folder, ["country", "day"]) == {"country": "DE", "day": "2024-01-01 00:00:00"}


def test_an_unpartitioned_batch_has_no_values() -> None:
    assert folder_values(STAGING, []) == {}


def test_a_folder_of_another_column_is_refused() -> None:
    with pytest.raises(TableError, match="not partitioned by country"):
        folder_values(f"{STAGING}/region=EU", ["country"])


def test_the_committed_batch_is_the_highest_of_this_app() -> None:
    lines = ["part=a%2Fb/_autoloader_batch=app-1", "_autoloader_batch=app-3", "_autoloader_batch=other-9"]
    assert committed_from_partitions(lines, "app") == 3
    assert committed_from_partitions(lines, "none") is None

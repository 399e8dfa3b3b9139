"""Counts in messages take the number of their noun ("1 file", "2 files"), with thousands separators."""

from __future__ import annotations

import pytest

from core.wording import counted


@pytest.mark.parametrize(
    ("count", "noun", "plural", "text"),
    [
        (0, "file", None, "0 files"),
        (1, "file", None, "1 file"),
        (2, "file", None, "2 files"),
        (1_000_000, "record", None, "1,000,000 records"),
        (1, "batch", "batches", "1 batch"),
        (3, "batch", "batches", "3 batches"),
        (1, "old file", None, "1 old file"),
    ],
)
def test_a_count_takes_the_number_of_its_noun(count: int, noun: str, plural: str | None, text: str) -> None:
    assert counted(count, noun, plural) == text


def test_a_cut_short_count_is_plural_with_a_plus() -> None:
    assert counted(1, "file", more=True) == "1+ files"
    assert counted(1000, "file", more=True) == "1,000+ files"
    assert counted(1, "file", more=False) == "1 file"

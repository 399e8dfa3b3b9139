"""Dates and times in shapes the default rules keep as text, told from a sample (core/formats/date_shapes.py)."""

from __future__ import annotations

import pytest

from core.formats.date_shapes import date_shape


@pytest.mark.parametrize(
    ("values", "option", "patterns"),
    [
        (["2012/01/31", "2012/1/2"], "date_format", ("yyyy/MM/dd",)),
        (["03/04/2020", "13/04/2020"], "date_format", ("dd/MM/yyyy",)),
        (["03/04/2020", "04/13/2020"], "date_format", ("MM/dd/yyyy",)),
        (["03/04/2020"], "date_format", ("dd/MM/yyyy", "MM/dd/yyyy")),
        (["01-02-2020"], "date_format", ("dd-MM-yyyy", "MM-dd-yyyy")),
        (["31.01.2012 10:00"], "timestamp_format", ("dd.MM.yyyy HH:mm",)),
        (["2012/01/31T10:00:05"], "timestamp_format", ("yyyy/MM/dd'T'HH:mm:ss",)),
    ],
)
def test_a_shape_names_the_option_and_the_patterns_that_read_every_value(
    values: list[str], option: str, patterns: tuple[str, ...]
) -> None:
    shape = date_shape(values)
    assert shape is not None and (shape.option, shape.patterns) == (option, patterns)


@pytest.mark.parametrize(
    "values",
    [
        [],
        ["2012-01-31"],  # ISO: typed without a pattern
        ["x"],
        ["2012/02/30"],  # no such day
        ["13/04/2020", "04/13/2020"],  # one order each: not one shape
        ["1/2/2020", "2012/01/01"],
        ["2012/01/31", "2012/01/31 10:00"],
    ],
)
def test_text_that_is_not_all_dates_of_one_shape_has_none(values: list[str]) -> None:
    assert date_shape(values) is None

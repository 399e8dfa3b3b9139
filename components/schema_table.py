"""A table schema: column, type, nullability, null share in the sample, sample value."""

from __future__ import annotations

from typing import Any

from nicegui import ui

COLUMNS = [
    {"name": "name", "label": "Column name", "field": "name", "align": "left"},
    {"name": "type", "label": "Type", "field": "type", "align": "left"},
    {"name": "nullable", "label": "Nullable", "field": "nullable", "align": "left"},
    {"name": "nulls", "label": "Null % (sample)", "field": "nulls", "align": "right"},
    {"name": "sample", "label": "Sample value", "field": "sample", "align": "left"},
]


def schema_table(schema: list[dict[str, Any]], null_percent: dict[str, float], samples: dict[str, Any]) -> ui.table:
    rows = [
        {
            "name": column["name"],
            "type": column["type"],
            "nullable": _nullable(column, null_percent),
            "nulls": f"{null_percent.get(column['name'], 0.0):.1f}%",
            "sample": _short(samples.get(column["name"])),
        }
        for column in schema
    ]
    return (
        ui.table(columns=COLUMNS, rows=rows, row_key="name")
        .props("flat bordered dense")
        .classes("w-full")
        .mark("schema-table")
    )


def _nullable(column: dict[str, Any], null_percent: dict[str, float]) -> str:
    if null_percent.get(column["name"], 0.0) > 0:
        return "Yes (nulls seen)"
    return "Yes" if column.get("nullable", True) else "No"


def _short(value: Any) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= 40 else text[:37] + "..."

"""Side-by-side current vs new schema, with added / removed / changed columns, and columns that fields were added
inside, highlighted."""

from __future__ import annotations

from typing import Any

from nicegui import ui

_ROW = "w-full min-w-0 items-center justify-between px-3 py-2 rounded text-sm"
# the panels sit side by side from 768 px (md) and stack below it; a plain div, as NiceGUI's row fixes the direction
_PANELS = "w-full flex flex-col md:flex-row gap-4 items-stretch schema-comparison"


def schema_diff(current: list[dict[str, Any]], proposed: list[dict[str, Any]], changes: list[dict[str, Any]]) -> None:
    added = {c["column"] for c in changes if c["kind"] == "added"}
    inside = nested_additions(changes)
    changed = {c["column"]: c for c in changes if c["kind"] == "type_changed"}
    new_names = {c["name"] for c in proposed}
    with ui.element("div").classes(_PANELS):
        with _panel("Current schema"):
            for column in current:
                gone = column["name"] not in new_names and column["name"] not in added
                style = "bg-slate-100 text-slate-600 line-through" if gone else "bg-white"
                _column_row(column["name"], column["type"], style, "✕" if gone else "•")
        ui.label("→").classes("self-center text-2xl text-slate-500 rotate-90 md:rotate-0").props('aria-hidden="true"')
        with _panel("New schema"):
            for column in proposed:
                name = column["name"]
                if name in added:
                    _column_row(name, column["type"], "bg-green-100 border border-green-300 schema-added", "+")
                elif name in changed:
                    change = changed[name]
                    label = f"{change['old_type']} → {change['new_type']}" + _adds(inside.get(name))
                    _column_row(name, label, "bg-amber-100 border border-amber-300 schema-changed", "~")
                elif name in inside:
                    label = column["type"] + _adds(inside[name])
                    _column_row(name, label, "bg-green-50 border border-green-300 schema-grown", "+")
                else:
                    _column_row(name, column["type"], "bg-white", "✓")


def nested_additions(changes: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The fields added inside each column (`user.age` → {"user": ["age"]}; `items.element.qty` → {"items":
    ["element.qty"]}), marked on the column: the column itself is neither new nor retyped."""
    inside: dict[str, list[str]] = {}
    for change in changes:
        column, dot, path = change["column"].partition(".")
        if change["kind"] == "added" and dot:
            inside.setdefault(column, []).append(path)
    return inside


def _adds(paths: list[str] | None) -> str:
    return f" (adds {', '.join(paths)})" if paths else ""


def _panel(title: str) -> ui.column:
    panel = ui.column().classes("flex-1 min-w-0 bg-slate-50 border border-slate-200 rounded-lg p-4 gap-2")
    with panel:
        ui.label(title.upper()).classes("text-xs font-bold text-slate-500 tracking-wide")
    return panel


def _column_row(name: str, type_text: str, style: str, mark: str) -> None:
    with ui.row().classes(f"{_ROW} {style}"):
        with ui.row().classes("items-center gap-2 no-wrap min-w-0"):
            ui.label(mark).classes("text-slate-600 w-4 shrink-0")
            ui.label(name).classes("font-medium [overflow-wrap:anywhere]")
        # a nested type is one long word (struct<a:string,b:string>): it breaks anywhere rather than widen the panel
        ui.label(type_text).classes("font-mono text-xs text-slate-600 min-w-0 [overflow-wrap:anywhere]")

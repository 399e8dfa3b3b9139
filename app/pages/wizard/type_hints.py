"""Step 2, Format: the "Column types" editor of `format.schema.hints`, the per-column type hints ({column: type}).

The rows the user edits live here; the draft holds their mapping (rows without a column name left out) and is
written only when the user changes a row, so stored hints keep their spelling until then. Every row is checked as
it changes by the spec's own validator (validation.hint_problems, which calls core's SchemaConfig), and its
problem is shown under the row. The row's error label is registered under `format.schema.hints.<column>`, so Next,
Save as Draft and Create show the same problems at the same rows (validation keys them so).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nicegui import ui

from app.pages.wizard.fields import FormFields
from app.pages.wizard.validation import HINTS, hint_path, hint_problems

OTHER = "other"
DECIMAL = "decimal"
TYPE_CHOICES = {
    "string": "string",
    "bigint": "bigint",
    "int": "int",
    "double": "double",
    DECIMAL: "decimal(p,s)",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    OTHER: "Other (type it)",
}
"""The common types; any other type the product reads (array<string>, struct<...>, smallint…) is typed as text."""
_DECIMAL_TEXT = re.compile(r"^decimal\((\d+),(\d+)\)$")
HELP = (
    "Give a column the type it must have instead of the one inferred from the files, e.g. amount as "
    "decimal(12,2) or zip as string. A nested field is named with dots: user.geo.lat."
)
MAX_CAPTION_HINTS = 3


def hints_text(hints: dict[str, str]) -> str:
    """The expansion's caption: "amount decimal(12,2), zip string" (the first few), or that there is none."""
    if not hints:
        return "None: every column's type is inferred from the files"
    shown = ", ".join(f"{column} {type_text}" for column, type_text in list(hints.items())[:MAX_CAPTION_HINTS])
    more = len(hints) - MAX_CAPTION_HINTS
    return f"{shown} and {more} more" if more > 0 else shown


def _whole(value: Any) -> str:
    """A precision or scale as typed (not clamped: the spec's check names a precision over 38 with the fix); nothing
    when empty (the type is then refused, naming the column)."""
    return "" if value is None or value == "" else str(int(value))


@dataclass(eq=False)
class HintRow:
    """One row of the editor: the column, the type chosen from the list, decimal's precision and scale, and the
    text of any other type. `typed`: the user has chosen a type, so a row still without a column is flagged."""

    column: str = ""
    kind: str = "string"
    precision: int | None = 10
    scale: int | None = 2
    other: str = ""
    typed: bool = False

    @classmethod
    def of(cls, column: str, type_text: str) -> HintRow:
        """A stored hint as a row whose `type_text()` is exactly the stored text (anything not spelled as the
        list spells it is shown as Other)."""
        decimal = _DECIMAL_TEXT.match(type_text)
        if decimal:
            return cls(column, DECIMAL, int(decimal[1]), int(decimal[2]))
        if type_text in TYPE_CHOICES and type_text not in (DECIMAL, OTHER):
            return cls(column, type_text)
        return cls(column, OTHER, other=type_text)

    def type_text(self) -> str:
        if self.kind == DECIMAL:
            return f"decimal({_whole(self.precision)},{_whole(self.scale)})"
        if self.kind == OTHER:
            return self.other.strip()
        return self.kind


def _marked(element: Any, name: str) -> Any:
    """The test marker, also as data-testid for a real browser."""
    return element.mark(name).props(f"data-testid={name}")


class TypeHintsEditor:
    def __init__(self, fields: FormFields, on_change: Callable[[], None]) -> None:
        """`on_change` runs when the hints in the draft change (the schema preview is then out of date)."""
        self.fields = fields
        self.on_change = on_change
        self.rows = [HintRow.of(column, text) for column, text in fields.draft.get(HINTS).items()]
        self.errors: dict[HintRow, ui.label] = {}
        self.last_column: ui.input | None = None

    def render(self) -> None:
        self.expansion = ui.expansion("Column types", icon="rule", caption=self._caption(), value=bool(self.rows))
        _marked(self.expansion.classes("w-full border border-slate-200 rounded-lg"), "type-hints")
        # no aria-label: the header is then named by what it shows, title and caption (WCAG 2.5.3 label in name)
        self.expansion.props('toggle-aria-label=""')
        with self.expansion:
            ui.label(HELP).classes("text-xs text-slate-500")
            self.area = ui.column().classes("w-full gap-1").mark("type-hint-rows")
            self.fields.error_slot(HINTS)
            self.add_button = ui.button("Add column type", icon="add", on_click=self._add)
            _marked(self.add_button.props("flat dense no-caps"), "add-type-hint")
            self.fields.open_until_loaded.append(self.add_button)
        self._render_rows()

    def _caption(self) -> str:
        return hints_text(self.fields.draft.get(HINTS))

    def _render_rows(self) -> None:
        self.area.clear()
        self.errors.clear()
        with self.area:
            for index, row in enumerate(self.rows):
                self._row(index, row)
        self._register_errors()

    def _row(self, index: int, row: HintRow) -> None:
        with ui.row().classes("w-full no-wrap items-start gap-2"):
            column = ui.input("Column", value=row.column, placeholder="amount").props("outlined dense")
            _marked(column.classes("flex-1"), f"type-hint-column-{index}")
            column.on_value_change(lambda e: self._set(row, column=(e.value or "").strip()))
            kind = ui.select(TYPE_CHOICES, label="Type", value=row.kind).props("outlined dense").classes("w-44")
            _marked(kind, f"type-hint-type-{index}")
            precision = ui.number("Precision", value=row.precision, precision=0)
            _marked(precision.props("outlined dense").classes("w-28"), f"type-hint-precision-{index}")
            precision.on_value_change(lambda e: self._set(row, precision=e.value))
            scale = ui.number("Scale", value=row.scale, precision=0)
            _marked(scale.props("outlined dense").classes("w-28"), f"type-hint-scale-{index}")
            scale.on_value_change(lambda e: self._set(row, scale=e.value))
            other = ui.input("Type name", value=row.other, placeholder="array<string>").props("outlined dense")
            _marked(other.classes("flex-1 font-mono"), f"type-hint-other-{index}")
            other.on_value_change(lambda e: self._set(row, other=e.value or ""))
            kind.on_value_change(lambda e: self._kind_chosen(row, e.value, precision, scale, other))
            remove = ui.button(icon="delete", on_click=lambda: self._remove(row)).props("flat dense")
            remove.props(f'aria-label="Remove the type of column {index + 1}"')
            _marked(remove, f"remove-type-hint-{index}")
        self._show_inputs(row, precision, scale, other)
        error = ui.label().classes("text-xs text-red-600 -mt-1").mark(f"type-hint-error-{index}")
        error.set_visibility(False)
        self.errors[row] = error
        self.last_column = column
        for element in (column, kind, precision, scale, other, remove):
            self.fields.open_until_loaded.append(element)
            if self.fields.loaded_lock:
                element.disable()

    @staticmethod
    def _show_inputs(row: HintRow, *inputs: ui.element) -> None:
        """Precision and scale for a decimal, the text box for any other type."""
        precision, scale, other = inputs
        precision.set_visibility(row.kind == DECIMAL)
        scale.set_visibility(row.kind == DECIMAL)
        other.set_visibility(row.kind == OTHER)

    def _kind_chosen(self, row: HintRow, kind: str, *inputs: ui.element) -> None:
        row.kind = kind
        self._show_inputs(row, *inputs)
        self._set(row, typed=True)

    def _add(self) -> None:
        """A new row, its column field focused (a keyboard user types the name at once)."""
        self.rows.append(HintRow())
        self._render_rows()
        if self.last_column is not None:
            self.last_column.run_method("focus")

    def _remove(self, row: HintRow) -> None:
        """The row gone, the focus on Add (the Remove button it was on no longer exists)."""
        self.rows.remove(row)
        self._render_rows()
        self._write()
        self.add_button.client.run_javascript(f"getHtmlElement({self.add_button.id})?.focus()")

    def _set(self, row: HintRow, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(row, name, value)
        if "other" in changes or "precision" in changes or "scale" in changes:
            row.typed = True
        self._write()

    def _write(self) -> None:
        """The rows into the draft (the last row of a column wins, as in a mapping), then every row's problem."""
        before = self.fields.draft.get(HINTS)
        hints = {row.column: row.type_text() for row in self.rows if row.column}
        self.fields.draft.set(HINTS, hints)
        self.fields.clear_error(HINTS)
        self._register_errors()
        self._show_problems(hint_problems(hints))
        if hints != before:
            self.expansion.props["caption"] = self._caption()
            self.on_change()

    def _register_errors(self) -> None:
        """Each named row's error label under its column's path, where the wizard's validation puts its problem."""
        for path in [path for path in self.fields.errors if path.startswith(f"{HINTS}.")]:
            del self.fields.errors[path]
        for row in self.rows:
            if row.column and row in self.errors:
                self.fields.errors[hint_path(row.column)] = self.errors[row]

    def _show_problems(self, problems: dict[str, str]) -> None:
        kept = {row.column: row for row in self.rows if row.column}
        for row, label in self.errors.items():
            message = self._row_problem(row, kept, problems)
            label.set_text(message or "")
            label.set_visibility(bool(message))

    @staticmethod
    def _row_problem(row: HintRow, kept: dict[str, HintRow], problems: dict[str, str]) -> str | None:
        if not row.column:
            return "Name the column this type is for, or remove the row." if row.typed else None
        if kept[row.column] is not row:
            return f"The column '{row.column}' is given a type twice; only its last row is kept, remove this one."
        return problems.get(hint_path(row.column))

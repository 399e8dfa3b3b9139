"""Step 3, Destination: the key/value editor of `destination.table_properties` (Delta table properties).

The rows the user edits live here; the draft holds their mapping (rows without a name left out), so a half-typed
row never reaches the spec. A name given twice is flagged at the field: a mapping keeps only its last value.
"""

from __future__ import annotations

from nicegui import ui

from app.pages.wizard.fields import FormFields

PATH = "destination.table_properties"
HELP = (
    "Set on the table when a run creates it, e.g. delta.appendOnly = true or delta.logRetentionDuration = "
    "interval 30 days."
)


def properties_text(properties: dict[str, str]) -> str:
    """The summary's line: "delta.appendOnly=true, owner=data-team" (empty when there is none)."""
    return ", ".join(f"{key}={value}" for key, value in properties.items())


class TablePropertiesEditor:
    def __init__(self, fields: FormFields) -> None:
        self.fields = fields
        self.rows: list[list[str]] = [[key, value] for key, value in fields.draft.get(PATH).items()]

    def render(self) -> None:
        ui.label("Table properties").classes("text-sm text-slate-600")
        ui.label(HELP).classes("text-xs text-slate-500 -mt-1")
        self.area = ui.column().classes("w-full gap-1").mark("table-properties")
        self.fields.error_slot(PATH)
        self.add_button = ui.button("Add property", icon="add", on_click=self._add).props("flat dense no-caps")
        self.add_button.mark("add-table-property")
        self.fields.lockable.append(self.add_button)
        self._render_rows()

    def _render_rows(self) -> None:
        self.area.clear()
        with self.area:
            for index, row in enumerate(self.rows):
                self._row(index, row)

    def _row(self, index: int, row: list[str]) -> None:
        with ui.row().classes("w-full no-wrap items-center gap-2"):
            key = ui.input("Property", value=row[0]).props("outlined dense").classes("flex-1")
            key.mark(f"table-property-key-{index}").on_value_change(lambda e: self._set(row, 0, e.value))
            value = ui.input("Value", value=row[1]).props("outlined dense").classes("flex-1")
            value.mark(f"table-property-value-{index}").on_value_change(lambda e: self._set(row, 1, e.value))
            remove = ui.button(icon="delete", on_click=lambda: self._remove(row)).props("flat dense")
            remove.props(f'aria-label="Remove property {index + 1}"').mark(f"remove-table-property-{index}")
        for element in (key, value, remove):
            self.fields.lockable.append(element)
            if self.fields.locked:
                element.disable()

    def _add(self) -> None:
        self.rows.append(["", ""])
        self._render_rows()

    def _remove(self, row: list[str]) -> None:
        self.rows.remove(row)
        self._render_rows()
        self._write()

    def _set(self, row: list[str], column: int, text: str | None) -> None:
        row[column] = text or ""
        self._write()

    def _write(self) -> None:
        """The rows into the draft, and their problems (a name twice, a value without a name) under the editor."""
        names = [key.strip() for key, _ in self.rows]
        self.fields.draft.set(PATH, {key.strip(): value for key, value in self.rows if key.strip()})
        self.fields.clear_error(PATH)
        twice = next((name for name in names if name and names.count(name) > 1), None)
        if twice:
            message = f"The property '{twice}' is given twice; only its last row is kept, remove the other."
            self.fields.show_error(PATH, message)
        elif any(not key.strip() and value for key, value in self.rows):
            self.fields.show_error(PATH, "A value has no property name; name it or remove the row.")
        elif self.fields.check_field is not None:
            for path, message in self.fields.check_field(PATH).items():
                self.fields.show_error(path, message)

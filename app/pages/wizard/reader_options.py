"""Step 2, Format: the "Advanced reader options" expansion — the CSV and JSON reader options of the spec.

Only the options of the chosen format are shown. Each widget is bound to its `format.options.*` field like every
other wizard field, so errors come from the spec's own validation (app/pages/wizard/validation.py) and are shown
under the field; a value checked when the user leaves the field is shown at once too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import ui

from app.pages.wizard.draft import OPTIONAL_RAW, OPTIONAL_TEXT, RAW_TEXT, TEXT, Codec, SpecDraft
from app.pages.wizard.fields import FormFields
from app.pages.wizard.validation import validate_parts
from core.config import FormatOptions

TEXT_FORMATS = ("csv", "json")
"""The formats that have reader options here (Parquet describes its own data)."""
MODES = {
    "permissive": "Permissive (keep in _rescued_data)",
    "dropmalformed": "Drop malformed (counted)",
    "failfast": "Fail fast (quarantine the file)",
}
MODE_HELP = "What happens to a record that does not fit the schema or does not parse (Spark: mode)"
ENCODINGS = ["utf-8", "latin-1", "windows-1252", "utf-16", "iso-8859-15", "ascii"]
INPUTS: dict[str, tuple[str, str, Codec]] = {
    "escape": ("Escape character", "Escapes a quote inside a quoted value, e.g. \\ (Spark: escape)", OPTIONAL_RAW),
    "comment": ("Comment character", "Lines starting with this character are skipped (Spark: comment)", OPTIONAL_RAW),
    "null_value": (
        "Null value",
        "Text read as NULL, e.g. NA or \\N; an empty field is always NULL (Spark: nullValue)",
        RAW_TEXT,
    ),
    "nan_value": ("NaN value", "Text read as not-a-number in a decimal column (Spark: nanValue)", RAW_TEXT),
    "date_format": (
        "Date format",
        "Pattern of date text, e.g. dd/MM/yyyy; empty: ISO 8601 (Spark: dateFormat)",
        OPTIONAL_TEXT,
    ),
    "timestamp_format": (
        "Timestamp format",
        "Pattern of timestamp text, e.g. yyyy-MM-dd HH:mm:ss; empty: ISO 8601 (Spark: timestampFormat)",
        OPTIONAL_TEXT,
    ),
    "encoding": ("Encoding", "Text encoding of the files, e.g. latin-1, windows-1252 (Spark: encoding)", TEXT),
}
CHECKBOXES = {
    "allow_single_quotes": (
        "Allow single quotes",
        "Accept 'single-quoted' names and strings (Spark: allowSingleQuotes)",
    ),
    "primitives_as_string": ("Primitives as string", "Read numbers and booleans as text (Spark: primitivesAsString)"),
}
CSV_ONLY = ("escape", "comment", "null_value", "nan_value")
SHARED = ("date_format", "timestamp_format", "encoding")
JSON_ONLY = ("allow_single_quotes", "primitives_as_string")
ADVANCED = (*CSV_ONLY, *SHARED, "mode", *JSON_ONLY)
APPLIES = {
    "csv": ("header", "delimiter", "quote", *CSV_ONLY, *SHARED, "mode"),
    "json": ("multiline", *SHARED, "mode", *JSON_ONLY),
}
"""The options each format reads (the ones the summary lists when they differ from the default)."""


def changed_options(draft: SpecDraft) -> dict[str, Any]:
    """The options of the chosen format whose value is not the default, by name."""
    options = draft.get("format.options")
    defaults = {name: FormatOptions.model_fields[name].default for name in APPLIES.get(draft.get("format.type"), ())}
    return {name: options[name] for name, default in defaults.items() if options.get(name, default) != default}


def options_text(draft: SpecDraft) -> str:
    """The summary's line: "null value 'NA', encoding 'latin-1'" (empty when every option is the default)."""
    return ", ".join(f"{name.replace('_', ' ')} {value!r}" for name, value in changed_options(draft).items())


def help_label(text: str) -> ui.label:
    return ui.label(text).classes("text-xs text-slate-500")


class ReaderOptions:
    def __init__(self, fields: FormFields, reprobe: Callable[[], None]) -> None:
        self.fields = fields
        self.draft = fields.draft
        self.reprobe = reprobe
        self.seen: dict[str, Any] = {
            f"format.options.{name}": self.draft.get(f"format.options.{name}") for name in INPUTS
        }
        """Each input's value when last left: leaving a field unchanged keeps the schema preview."""

    def _is(self, *formats: str) -> Callable[[], bool]:
        return lambda: self.draft.get("format.type") in formats

    def render(self) -> None:
        fields = self.fields
        with fields.when(ui.column().classes("w-full"), self._is(*TEXT_FORMATS)):
            self.expansion = ui.expansion("Advanced reader options", icon="tune", caption=self.caption())
            self.expansion.classes("w-full border border-slate-200 rounded-lg").mark("reader-options")
            # no aria-label: the header is then named by what it shows, title and caption (WCAG 2.5.3 label in name)
            self.expansion.props('toggle-aria-label=""')
        with self.expansion:
            with fields.when(ui.grid(columns=2).classes("w-full gap-x-4"), self._is("csv")):
                for name in CSV_ONLY:
                    self._input(name)
            with ui.grid(columns=2).classes("w-full gap-x-4"):
                for name in SHARED:
                    self._input(name)
                with ui.column().classes("w-full gap-1"):
                    mode = ui.select(MODES, label="Malformed records").props("outlined").classes("w-full")
                    fields.bind(mode, "format.options.mode", lockable=True, after=self._changed)
                    help_label(MODE_HELP)
            with fields.when(ui.column().classes("w-full gap-1"), self._is("json")):
                for name, (label, help_text) in CHECKBOXES.items():
                    fields.bind(ui.checkbox(label), f"format.options.{name}", lockable=True, after=self._changed)
                    help_label(help_text).classes("-mt-2 ml-10")

    def _input(self, name: str) -> None:
        label, help_text, codec = INPUTS[name]
        path = f"format.options.{name}"
        with ui.column().classes("w-full gap-1"):
            kwargs: dict[str, Any] = {"autocomplete": ENCODINGS} if name == "encoding" else {}
            self.fields.input(label, path, codec, **kwargs).on("blur", lambda: self._check(path))
            help_label(help_text)  # under the error label, which a Quasar hint of two lines would cover

    def _check(self, path: str) -> None:
        """The spec's own check of the field just left, shown under it; then the preview is out of date."""
        message = validate_parts(self.draft, ("format",)).get(path)
        if message:
            self.fields.errors[path].set_text(message)
            self.fields.errors[path].set_visibility(True)
        if self.seen.get(path) != self.draft.get(path):
            self.seen[path] = self.draft.get(path)
            self._changed()

    def _changed(self) -> None:
        self.refresh_caption()
        self.reprobe()

    def refresh_caption(self) -> None:
        """The caption names the options changed from the defaults, so a collapsed expansion hides nothing."""
        self.expansion.props["caption"] = self.caption()

    def caption(self) -> str:
        changed = [name for name in changed_options(self.draft) if name in ADVANCED]
        if not changed:
            return "Spark / Auto Loader defaults"
        return "Changed: " + ", ".join(name.replace("_", " ") for name in changed)

"""Step 2, Format: file format, schema detection and options, with the schema preview of sample files.

A new ingestion's format is guessed from the Source step's file pattern or path (`*.csv`, `orders.json.gz`) until
the user picks one here; an edited ingestion keeps its stored format.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import ui

from app.pages.wizard.draft import JSON_TEXT, OPTIONAL_TEXT, RAW_TEXT
from app.pages.wizard.fields import WizardState, lock_banner, section
from app.pages.wizard.reader_options import ReaderOptions
from app.pages.wizard.type_hints import TypeHintsEditor
from app.pages.wizard.validation import validate_parts
from components.styles import PANEL
from core.wording import counted

FORMAT_LABELS = {
    "json": "JSON",
    "csv": "CSV / TSV",
    "parquet": "Parquet",
    "avro": "Avro",
    "orc": "ORC",
    "xml": "XML",
    "text": "Text (a row per line, or the whole file)",
}
"""Every format both engines read (core.config.EMBEDDED_FORMATS)."""
SCHEMA_POLICIES = {
    "auto_merge": "Add new columns automatically (schema evolution)",
    "rescue": "Keep the table schema; new fields go to _rescued_data",
    "fail": "Fail the run and name the new columns",
    "pause": "Hold files with new columns for review, and pause until you choose what to do",
}
COMPRESSIONS = {
    "auto": "Detect from the file",
    "none": "None",
    "gzip": "gzip",
    "bz2": "bzip2",
    "zstd": "zstd",
    "lz4": "LZ4 (frame)",
    "snappy": "Snappy (framed)",
}

SUFFIX_FORMATS = {
    "json": "json",
    "jsonl": "json",
    "ndjson": "json",
    "csv": "csv",
    "tsv": "csv",
    "parquet": "parquet",
    "avro": "avro",
    "orc": "orc",
    "xml": "xml",
    "txt": "text",
    "log": "text",
}
COMPRESSION_SUFFIXES = ("gz", "gzip", "bz2", "zst", "zstd", "lz4", "snappy")
"""Read past these to the format's suffix: `*.json.gz` is JSON."""
_SUFFIXES = re.compile(r"\.([A-Za-z0-9]+)")
GUESSED_FROM = ("source.file_pattern", "source.path")


def format_from_name(name: str | None) -> str | None:
    """The format a file pattern or path names by its suffix (`*.csv`, `/in/orders.json.gz`), or None."""
    suffixes = [s.lower() for s in _SUFFIXES.findall((name or "").rstrip("/").rsplit("/", 1)[-1])]
    while suffixes and suffixes[-1] in COMPRESSION_SUFFIXES:
        suffixes.pop()
    return SUFFIX_FORMATS.get(suffixes[-1]) if suffixes else None


def guess_format(file_pattern: str | None, path: str | None) -> str | None:
    """The pattern decides when it names a format; else the path's own suffix (a single file)."""
    return format_from_name(file_pattern) or format_from_name(path)


class FormatStep:
    def __init__(self, state: WizardState, probe: Callable[[], Awaitable[bool]], failure: Callable[[], str]) -> None:
        """`probe` reads the source (the Source step's Test Connection); `failure` is the text of its last error."""
        self.state = state
        self.fields = state.fields
        self.draft = state.draft
        self.probe = probe
        self.failure = failure
        self.format_chosen = state.editing_id is not None
        """Whether the format is the user's (picked here, or stored): then the file names no longer change it."""

    def _is(self, value: str, path: str = "format.type") -> Callable[[], bool]:
        return lambda: self.draft.get(path) == value

    def render(self) -> None:
        fields = self.fields
        lock_banner(self.state.locked, self.fields.loaded_lock)
        section("File Format & Schema", "description")
        reprobe = self.reprobe_soon
        self.reader_options = ReaderOptions(fields, reprobe)
        self.format_select = ui.select(dict(FORMAT_LABELS), label="File Format *").props("outlined").classes("w-full")
        fields.bind(self.format_select, "format.type", lockable=True, after=self._format_picked)
        self._watch_source()
        ui.label("Schema Detection").classes("text-sm text-slate-600")
        mode = ui.radio({"auto": "Auto-detect schema", "manual": "Provide schema manually"}).props("inline")
        fields.bind(mode, "format.schema.inference", lockable=True)
        with fields.when(ui.column().classes("w-full"), self._is("manual", "format.schema.inference")):
            text = ui.textarea("Schema (JSON)", placeholder='[{"name": "id", "type": "bigint", "nullable": true}]')
            fields.bind(text.props("outlined").classes("w-full font-mono"), "format.schema.schema_json", JSON_TEXT)
            fields.open_until_loaded.append(text)
        infer = ui.checkbox("Infer column types")
        fields.bind(infer, "format.schema.infer_types", marked=False, lockable=True, after=reprobe)
        ui.label("Keeps strings when off; numbers, booleans and timestamps are detected when on.").classes(
            "text-xs text-slate-500 -mt-3"
        )
        with fields.when(ui.column().classes("w-full"), self._is("auto", "format.schema.inference")):
            TypeHintsEditor(fields, reprobe).render()  # a manual schema is taken as declared: hints do not apply
        policy = ui.select(SCHEMA_POLICIES, label="When new columns appear").props("outlined").classes("w-full")
        fields.bind(policy, "format.schema.on_schema_change", lockable=True)
        ui.label("Format-Specific Options").classes("text-lg font-semibold text-slate-800 mt-2")
        self._options(reprobe)
        with ui.column().classes(f"{PANEL} gap-1"):
            with ui.row().classes("w-full items-center justify-between"):
                ui.label("Schema Preview").classes("font-semibold")
                ui.button("Refresh", icon="refresh", on_click=self.reprobe).props("flat dense no-caps").mark(
                    "refresh-schema"
                )
            self.schema_preview = ui.column().classes("gap-0").mark("schema-preview")
        self.render_schema_preview()

    def _options(self, reprobe: Callable[[], None]) -> None:
        fields = self.fields
        with fields.when(ui.column().classes("w-full"), self._is("json")):
            lines = ui.radio({False: "Single-line (1 record per line)", True: "Multi-line (documents or arrays)"})
            fields.bind(lines.props("inline"), "format.options.multiline", marked=False, lockable=True, after=reprobe)
        with fields.when(ui.row().classes("w-full items-center gap-4"), self._is("csv")):
            header = ui.checkbox("First row is a header")
            fields.bind(header, "format.options.header", marked=False, lockable=True, after=reprobe)
            for label, path in (("Delimiter", "format.options.delimiter"), ("Quote", "format.options.quote")):
                with ui.column().classes("w-32"):
                    typed = fields.input(label, path, RAW_TEXT).on("blur", reprobe)
                    typed.on_value_change(lambda _: self.reprobe_soon())  # a schema of the old option is not shown
        with fields.when(ui.column().classes("w-full"), self._is("xml")):
            fields.input(
                "Row tag (the element of one record)", "format.options.row_tag", OPTIONAL_TEXT, placeholder="row"
            )
        with fields.when(ui.column().classes("w-full"), self._is("text")):
            whole = ui.checkbox("Whole file as one row (else a row per line)")
            fields.bind(whole, "format.options.wholetext", marked=False, lockable=True, after=reprobe)
        compression = ui.select(COMPRESSIONS, label="Compression").props("outlined").classes("w-full")
        fields.bind(compression, "format.options.compression", lockable=True)
        self.reader_options.render()

    def _watch_source(self) -> None:
        """Guess again whenever the Source step's pattern or path changes (their widgets are bound already)."""
        for path in GUESSED_FROM:
            for element, _ in self.fields.bound.get(path, []):
                element.on_value_change(self._guess)

    def _guess(self, *_: Any) -> None:
        guessed = guess_format(self.draft.get("source.file_pattern"), self.draft.get("source.path"))
        if self.format_chosen or guessed is None or guessed == self.draft.get("format.type"):
            return
        self.draft.set("format.type", guessed)
        self.fields.pull("format.type")
        self.fields.sync()
        self._format_changed()

    def adopt_sample_format(self) -> bool:
        """Before the user picks a format: take the one most of the sampled files name by their suffix (a folder of
        `.csv` files started on JSON and said "not valid JSON"); True when the draft's format changed."""
        probe = self.state.probe
        if self.format_chosen or probe is None or not probe.sample_files:
            return False
        named = Counter(f for f in map(format_from_name, probe.sample_files) if f is not None)
        if not named:
            return False
        guessed, count = named.most_common(1)[0]
        if 2 * count <= len(probe.sample_files) or guessed == self.draft.get("format.type"):
            return False
        self.draft.set("format.type", guessed)
        self.fields.pull("format.type")
        self.fields.sync()
        self.reader_options.refresh_caption()
        return True

    def _format_picked(self) -> None:
        self.format_chosen = True
        self._format_changed()

    def _format_changed(self) -> None:
        self.reader_options.refresh_caption()
        self.reprobe_soon()

    def reprobe_soon(self) -> None:
        self.state.probe = None
        self.render_schema_preview()

    async def reprobe(self) -> None:
        if validate_parts(self.draft, ("source",)):
            ui.notify("Fill in the source first: the preview reads sample files from it.", type="warning")
            return
        if not await self.probe():
            self.schema_preview.clear()
            with self.schema_preview:
                ui.label(self.failure()).classes("text-sm text-red-700")

    def render_schema_preview(self) -> None:
        self.schema_preview.clear()
        probe = self.state.probe
        with self.schema_preview:
            if probe is None:
                ui.label("Press Refresh to infer the schema from sample files.").classes("text-sm text-slate-500")
                return
            columns, samples = counted(len(probe.schema), "column"), counted(len(probe.sample_files), "sample file")
            ui.label(f"Detected {columns} from {samples}:").classes("text-sm")
            for column in probe.schema:
                ui.label(f"• {column['name']} ({column['type']})").classes("text-sm font-mono")
            if probe.delimiter_hint:  # the column's stored name hides the delimiter it holds
                ui.label(f"⚠ {probe.delimiter_hint}").classes("text-sm text-amber-700").mark("delimiter-hint")
            for path, reason in probe.bad_files.items():
                ui.label(f"⚠ {path}: {reason}").classes("text-xs text-amber-700")

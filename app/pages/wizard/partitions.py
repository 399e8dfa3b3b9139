"""Step 1, Source: "Partition folders" — Hive-style key=value folders (year=2024/month=01/) read as columns.

`source.partition_columns` is None (every such folder, Auto Loader's default), [] (off) or a list (only those).
The choice and the list are two widgets bound to the same field: the choice writes None, [] or the listed
columns; the list, shown for "only these", writes what is typed.
"""

from __future__ import annotations

from typing import Any

from nicegui import ui

from app.pages.wizard.draft import Codec
from app.pages.wizard.fields import FormFields

PATH = "source.partition_columns"
CHOICES = {"all": "On: every key=value folder", "off": "Off", "only": "Only these columns"}
HELP = (
    "Folders named key=value (e.g. year=2024/month=01/) become columns of the table "
    "(Auto Loader: cloudFiles.partitionColumns; on is its default)."
)


def choice_of(columns: list[str] | None) -> str:
    if columns is None:
        return "all"
    return "only" if columns else "off"


def columns_in(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


COLUMNS_TEXT = Codec(lambda v: ", ".join(v or []), columns_in)


def describe(columns: list[str] | None) -> str | None:
    """The summary's text; None for the default (every folder)."""
    if columns is None:
        return None
    return "only " + ", ".join(columns) if columns else "off"


class PartitionFolders:
    def __init__(self, fields: FormFields) -> None:
        self.fields = fields

    def render(self) -> None:
        fields = self.fields
        ui.label("Partition folders").classes("text-sm text-slate-600 mt-2")
        codec = Codec(choice_of, self._read_choice)
        self.choice = fields.bind(ui.radio(CHOICES).props("inline"), PATH, codec, marked=False, lockable=True)
        self.choice.mark("partition-folders")
        ui.label(HELP).classes("text-xs text-slate-500 -mt-2")
        with fields.when(ui.column().classes("w-full"), lambda: self.choice.value == "only"):
            self.columns = fields.input("Partition columns", PATH, COLUMNS_TEXT, placeholder="year, month")
            self.columns.props("hint='Comma-separated folder keys; other key=value folders stay plain folders'")

    def _read_choice(self, value: Any) -> list[str] | None:
        if value == "all":
            return None
        if value == "off":
            return []
        return columns_in(self.columns.value)

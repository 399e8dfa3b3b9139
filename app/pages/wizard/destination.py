"""Step 3, Destination: the target table, write mode (merge keys and ordering), optimisation columns, table
properties, lineage columns and the engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import ui

from app.pages.wizard.draft import COLUMNS, ENGINE, OPTIONAL_TEXT
from app.pages.wizard.fields import WizardState, lock_banner, section
from app.pages.wizard.table_properties import TablePropertiesEditor
from components.styles import PANEL
from core.schema import LINEAGE_COLUMNS

WRITE_MODES = {
    "append": "Append (add new data)",
    "create": "Create new table (must not exist)",
    "overwrite": "Overwrite (each run replaces the table)",
    "merge": "Merge / upsert on key columns",
}
COLUMN_PATHS = ("destination.merge_keys", "destination.partition_columns", "destination.z_order_columns")
MERGE_ORDER_HELP = (
    "Which row wins when a batch holds several rows with the same key: the one with the highest value of this "
    "column (e.g. updated_at). Empty: the row read last wins."
)
LINEAGE_HELP = (
    f"Adds {', '.join(LINEAGE_COLUMNS)} to every row: which file it came from, when and by which run. "
    "Reloading changed files needs them."
)


class DestinationStep:
    def __init__(
        self, state: WizardState, on_engine_change: Callable[[], None], on_columns_change: Callable[[], None]
    ) -> None:
        self.state = state
        self.fields = state.fields
        self.draft = state.draft
        self.on_engine_change = on_engine_change
        self.on_columns_change = on_columns_change

    def render(self) -> None:
        fields = self.fields
        lock_banner(self.state.locked)
        section("Target Table", "table_chart")
        fields.input("Catalog", "destination.catalog").on_value_change(self._table_changed)
        fields.input("Database / Schema", "destination.database").on_value_change(self._table_changed)
        fields.input("Table Name *", "destination.table").on_value_change(self._table_changed)
        self.full_name = ui.label().classes("text-xs text-slate-500 -mt-2").mark("full-table-name")
        self._render_full_name()
        mode = ui.select(WRITE_MODES, label="Write Mode").props("outlined").classes("w-full")
        fields.bind(mode, "destination.write_mode", lockable=True)
        with fields.when(ui.column().classes("w-full"), lambda: self.draft.get("destination.write_mode") == "merge"):
            merge = self._column_select("Merge key columns *", "destination.merge_keys")
            order = self._order_select()
        ui.label("Optimization Options").classes("text-lg font-semibold text-slate-800 mt-2")
        partition = self._column_select("Partition columns", "destination.partition_columns")
        zorder = self._column_select("Z-order columns", "destination.z_order_columns")
        self.column_selects = (merge, order, partition, zorder)
        TablePropertiesEditor(fields).render()
        lineage = ui.switch("Lineage columns")
        fields.bind(lineage, "destination.lineage_columns", lockable=True, after=self.on_columns_change)
        ui.label(LINEAGE_HELP).classes("text-xs text-slate-500 -mt-2")
        self._engine()
        self.summary = ui.column().classes(f"{PANEL} gap-0")

    def _engine(self) -> None:
        ui.label("Engine").classes("text-sm text-slate-600")
        engines = {0: "Embedded (Arrow + delta-rs)"} | {
            c.id: f"{c.name} — Spark cluster ({c.table_format}, ${c.price_per_hour:.2f}/h)" for c in self.state.clusters
        }
        cluster_id = self.draft.get("cluster_id")
        if cluster_id is not None and cluster_id not in engines:
            engines[cluster_id] = f"Cluster {cluster_id}"
        engine = ui.radio(engines)
        self.fields.bind(engine, "cluster_id", ENGINE, marked=False, lockable=True, after=self.on_engine_change)
        engine.mark("engine").props("data-testid=engine")
        self.fields.error_slot("cluster_id")
        if not self.state.clusters:
            ui.link("Register a Spark cluster to run on Spark", "/clusters").classes("text-xs text-indigo-700")

    def columns(self) -> list[str]:
        """The probed schema's columns, then any chosen column the probe does not know (typed by the user)."""
        known = [c["name"] for c in self.state.probe.schema] if self.state.probe else []
        chosen = [column for path in COLUMN_PATHS for column in self.draft.get(path)]
        chosen += [self.draft.get("destination.merge_order_by")] if self.draft.get("destination.merge_order_by") else []
        return known + [c for c in dict.fromkeys(chosen) if c not in known]

    def _column_select(self, label: str, path: str) -> ui.select:
        select = ui.select(self.columns(), label=label, multiple=True, new_value_mode="add-unique")
        select.props("outlined use-chips hint='Columns come from the schema preview; you can type a name'")
        bound: ui.select = self.fields.bind(
            select.classes("w-full"), path, COLUMNS, lockable=True, after=self.on_columns_change
        )
        return bound

    def _order_select(self) -> ui.select:
        """The merge ordering column (`merge_order_by`): one column or none."""
        select = ui.select(self.columns(), label="Latest row by (ordering column)", new_value_mode="add-unique")
        select.props("outlined clearable")
        bound: ui.select = self.fields.bind(
            select.classes("w-full"),
            "destination.merge_order_by",
            OPTIONAL_TEXT,
            lockable=True,
            after=self.on_columns_change,
        )
        ui.label(MERGE_ORDER_HELP).classes("text-xs text-slate-500 -mt-2")
        return bound

    def refresh_columns(self) -> None:
        options = self.columns()
        for select in self.column_selects:
            self.fields.set_options(select, options)

    def _table_changed(self, *_: Any) -> None:
        """The name under the inputs, and the summaries (which say where the table is written)."""
        self._render_full_name()
        self.on_columns_change()

    def _render_full_name(self, *_: Any) -> None:
        self.full_name.set_text(f"Full table name: {self.draft.full_table_name}")

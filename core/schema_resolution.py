"""What each resolution of a pending schema change will do, as statements shown before applying."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from core.column_defaults import stored_default
from core.errors import ConfigError, Conflict

Resolution = Literal["auto_merge", "backfill_default", "new_table", "ignore", "review_later"]

TRADE_OFFS: dict[str, str] = {
    "auto_merge": "Adds the new columns (and applies safe widenings); existing rows get NULL. No data loss.",
    "backfill_default": "Adds the new columns and sets them to a default value in every existing row.",
    "new_table": "Creates a new table with the new schema and switches the ingestion to it; the old table stays as is.",
    "ignore": "Keeps the table as is: the new columns are dropped from this and future loads; a column whose type "
    "changed keeps its type, and values that do not fit it go to _rescued_data (reversible).",
    "review_later": "Changes nothing; the ingestion stays paused and the files stay held.",
}


@dataclass(slots=True)
class ResolutionPlan:
    resolution: str
    trade_off: str
    statements: list[str]
    added: list[dict[str, Any]] = field(default_factory=list)
    widened: list[dict[str, Any]] = field(default_factory=list)
    grown: list[str] = field(default_factory=list)
    """The struct columns that take fields added inside them (auto_merge)."""
    ignored: list[str] = field(default_factory=list)
    kept_types: dict[str, str] = field(default_factory=dict)
    """ignore: the columns whose type changed incompatibly, held at the table's type (a type hint) so their values
    that do not fit go to _rescued_data, while the column goes on loading."""
    new_table: str | None = None
    defaults: dict[str, Any] = field(default_factory=dict)
    """backfill_default: each new column's default as the column will store it (checked before any change)."""


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def plan_resolution(
    resolution: str,
    table: str,
    proposed: list[dict[str, Any]],
    changes: list[dict[str, Any]],
    default_values: dict[str, Any] | None = None,
    new_table: str | None = None,
) -> ResolutionPlan:
    """The statements a resolution runs against `table` (catalog.database.table) for the pending `changes`."""
    types = {c["name"]: c["type"] for c in proposed}
    added = [c for c in changes if c["kind"] == "added" and "." not in c["column"]]
    widened = [c for c in changes if c["kind"] == "type_changed" and c["safe_widening"]]
    incompatible = [c for c in changes if c["kind"] == "type_changed" and not c["safe_widening"]]
    column_defs = ", ".join(f"{_quote(c['column'])} {types.get(c['column'], c['new_type'])}" for c in added)
    add_ddl = [f"ALTER TABLE {table} ADD COLUMNS ({column_defs})"] if added else []
    widen_ddl = [
        f"ALTER TABLE {table} ALTER COLUMN {_quote(c['column'])} TYPE {c['new_type']}  -- rewrites the table"
        for c in widened
    ]
    plan = ResolutionPlan(resolution, TRADE_OFFS.get(resolution, ""), [], added=added, widened=widened)
    nested = [c for c in changes if c["kind"] == "added" and "." in c["column"]]
    if nested and resolution in ("backfill_default", "ignore"):  # applied, the files were held again
        raise Conflict(
            f"A field added inside a struct column ({', '.join(c['column'] for c in nested)}) cannot be "
            f"{'backfilled' if resolution == 'backfill_default' else 'ignored'}; applied, this resolution would hold "
            "the files again.",
            "Choose auto_merge (the struct takes the field; existing rows get NULL in it) or new_table.",
            field="resolution",
        )
    plan.grown = list(dict.fromkeys(c["column"].split(".", 1)[0] for c in nested))
    nested_defs = ", ".join(f"{'.'.join(map(_quote, c['column'].split('.')))} {c['new_type']}" for c in nested)
    add_ddl += [f"ALTER TABLE {table} ADD COLUMNS ({nested_defs})"] if nested else []
    if resolution == "auto_merge":
        if incompatible:
            raise Conflict(
                "Auto-merge cannot apply an incompatible type change: "
                + "; ".join(f"{c['column']} {c['old_type']} → {c['new_type']}" for c in incompatible),
                "Choose 'new table' (new schema in a new table) or 'ignore' (drop those columns from loads).",
                field="resolution",
            )
        plan.statements = add_ddl + widen_ddl
    elif resolution == "backfill_default":
        missing = [c["column"] for c in added if c["column"] not in (default_values or {})]
        if missing or not added:
            raise ConfigError(
                "Backfill needs a default value for every new column"
                + (f": missing {', '.join(missing)}." if missing else "; this change adds no column."),
                'Send default_values, e.g. {"' + (missing[0] if missing else "column") + '": 0}.',
                field="default_values",
            )
        plan.defaults = {
            c["column"]: stored_default(
                c["column"], (default_values or {})[c["column"]], types.get(c["column"], c["new_type"])
            )
            for c in added
        }
        sets = ", ".join(f"{_quote(column)} = {value!r}" for column, value in plan.defaults.items())
        plan.statements = [*add_ddl, *widen_ddl, f"UPDATE {table} SET {sets}"]
    elif resolution == "new_table":
        catalog_db, _, name = table.rpartition(".")
        target = f"{catalog_db}.{new_table or name + '_v2'}"
        columns = ", ".join(f"{_quote(c['name'])} {c['type']}" for c in proposed)
        plan.new_table = target
        plan.statements = [f"CREATE TABLE {target} ({columns})", f"-- the ingestion now writes to {target}"]
    elif resolution == "ignore":
        plan.ignored = [c["column"] for c in added]
        plan.kept_types = {c["column"]: c["old_type"] for c in incompatible}
        plan.statements = [f"-- no change to {table}"]
        if plan.kept_types:
            kept = ", ".join(f"{column} {kind}" for column, kind in plan.kept_types.items())
            plan.statements.append(f"-- kept at the table's type, values that do not fit go to _rescued_data: {kept}")
        if plan.ignored:
            plan.statements.append(f"-- dropped from loads: {', '.join(plan.ignored)}")
    elif resolution != "review_later":
        raise ConfigError(
            f"Unknown resolution '{resolution}'.",
            "Use auto_merge, backfill_default, new_table, ignore or review_later.",
            field="resolution",
        )
    return plan

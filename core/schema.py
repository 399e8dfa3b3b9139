"""Schema comparison and the schema-change policy, as pure functions over Arrow schemas."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import pyarrow as pa

from core.formats.unify import normalize_type

RESCUED = "_rescued_data"
LINEAGE_COLUMNS = ("_source_file", "_ingested_at", "_run_id")
SYSTEM_COLUMNS = frozenset((RESCUED, *LINEAGE_COLUMNS))

ChangeKind = Literal["added", "removed", "type_changed", "nullability_changed"]

_SAFE_WIDENINGS = {
    ("int8", "int16"), ("int8", "int32"), ("int8", "int64"), ("int16", "int32"), ("int16", "int64"),
    ("int32", "int64"), ("int32", "double"), ("int64", "double"), ("float", "double"),
    ("date32[day]", "timestamp[us, tz=UTC]"),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SchemaChange:
    kind: ChangeKind
    column: str
    old_type: str | None = None
    new_type: str | None = None
    safe_widening: bool = False

    def describe(self) -> str:
        if self.kind == "added":
            return f"new column '{self.column}' ({self.new_type})"
        if self.kind == "removed":
            return f"column '{self.column}' missing from the new files"
        if self.kind == "type_changed":
            kind = "safe widening" if self.safe_widening else "incompatible type change"
            return f"column '{self.column}' changed {self.old_type} → {self.new_type} ({kind})"
        return f"column '{self.column}' nullability changed"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def data_fields(schema: pa.Schema) -> list[pa.Field]:
    return [f for f in schema if f.name not in SYSTEM_COLUMNS]


def diff_schemas(table: pa.Schema, incoming: pa.Schema, prefix: str = "") -> list[SchemaChange]:
    """Every difference between the table's data columns and the incoming ones, nested fields included."""
    changes: list[SchemaChange] = []
    current = {f.name: f for f in data_fields(table)}
    new = {f.name: f for f in data_fields(incoming)}
    for name, f in new.items():
        path = prefix + name
        old = current.get(name)
        if old is None:
            changes.append(SchemaChange("added", path, new_type=str(normalize_type(f.type))))
            continue
        old_t, new_t = normalize_type(old.type), normalize_type(f.type)
        if pa.types.is_null(new_t) or old_t == new_t:
            pass
        elif pa.types.is_struct(old_t) and pa.types.is_struct(new_t):
            changes.extend(diff_schemas(pa.schema(list(old_t)), pa.schema(list(new_t)), prefix=path + "."))
        else:
            safe = (str(old_t), str(new_t)) in _SAFE_WIDENINGS
            changes.append(SchemaChange("type_changed", path, str(old_t), str(new_t), safe_widening=safe))
        if old.nullable is False and f.nullable:
            changes.append(SchemaChange("nullability_changed", path, str(old_t), str(new_t)))
    changes.extend(
        SchemaChange("removed", prefix + name, old_type=str(normalize_type(f.type)))
        for name, f in current.items()
        if name not in new
    )
    return changes


Action = Literal["proceed", "evolve", "fail"]


@dataclass(slots=True)
class SchemaDecision:
    """What to do with a batch: its target data schema, and the changes seen on the way."""

    action: Action
    target: pa.Schema
    changes: list[SchemaChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        return "; ".join(c.describe() for c in self.changes)


def decide(policy: str, table: pa.Schema | None, incoming: pa.Schema) -> SchemaDecision:
    """Apply the ingestion's `on_schema_change` policy to (table schema, incoming schema).

    The target never changes an existing column's type: values that do not fit the table type
    go to `_rescued_data` rather than being cast silently. New columns are added under
    `auto_merge` and, until the review workflow exists, under `pause` too. `rescue` keeps the
    table schema (new fields are rescued); `fail` stops on any added or changed column.
    """
    incoming = pa.schema([pa.field(f.name, normalize_type(f.type), True) for f in data_fields(incoming)])
    if table is None:
        return SchemaDecision("evolve", incoming)
    table_data = pa.schema(data_fields(table))
    changes = diff_schemas(table_data, incoming)
    added = [c for c in changes if c.kind == "added" and "." not in c.column]
    changed = [c for c in changes if c.kind == "type_changed"]
    notes = [c.describe() for c in changes if c.kind == "removed"]
    if policy == "fail" and (added or changed):
        return SchemaDecision("fail", table_data, changes, notes)
    if changed:
        notes += [f"{c.describe()}: values that do not fit {c.old_type} go to {RESCUED}" for c in changed]
    if added and policy in ("auto_merge", "pause"):
        extra = [incoming.field(c.column) for c in added]
        return SchemaDecision("evolve", pa.schema([*table_data, *extra]), changes, notes)
    if added:
        notes += [f"{c.describe()}: kept in {RESCUED} (policy rescue)" for c in added]
    return SchemaDecision("proceed", table_data, changes, notes)

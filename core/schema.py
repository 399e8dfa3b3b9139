"""Schema comparison and the schema-change policy, as pure functions over Arrow schemas."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import pyarrow as pa

from core.formats.types import type_name
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
        return {**asdict(self), "description": self.describe()}


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
            changes.append(SchemaChange("added", path, new_type=type_name(normalize_type(f.type))))
            continue
        old_t, new_t = normalize_type(old.type), normalize_type(f.type)
        if pa.types.is_null(new_t) or old_t == new_t:
            pass
        elif pa.types.is_struct(old_t) and pa.types.is_struct(new_t):
            changes.extend(diff_schemas(pa.schema(list(old_t)), pa.schema(list(new_t)), prefix=path + "."))
        else:
            safe = (str(old_t), str(new_t)) in _SAFE_WIDENINGS
            changes.append(SchemaChange("type_changed", path, type_name(old_t), type_name(new_t), safe_widening=safe))
        if old.nullable is False and f.nullable:
            changes.append(SchemaChange("nullability_changed", path, type_name(old_t), type_name(new_t)))
    changes.extend(
        SchemaChange("removed", prefix + name, old_type=type_name(normalize_type(f.type)))
        for name, f in current.items()
        if name not in new
    )
    return changes


Action = Literal["proceed", "evolve", "fail"]


@dataclass(slots=True)
class SchemaDecision:
    """What to do with the loadable files of a batch: the target data schema and how to get there."""

    action: Action
    target: pa.Schema
    changes: list[SchemaChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    widen: list[pa.Field] = field(default_factory=list)

    @property
    def message(self) -> str:
        return "; ".join(c.describe() for c in self.changes)


def blocks(policy: str, change: SchemaChange) -> bool:
    """Whether a change stops a file from loading under a policy (it is then held for review, or fails).

    Removed columns and nullability never block: new rows get NULL. `rescue` never blocks: unknown or
    mismatched values go to `_rescued_data`. `auto_merge` takes added columns and safe widenings.
    """
    if change.kind in ("removed", "nullability_changed") or policy == "rescue":
        return False
    if policy == "auto_merge":
        return change.kind == "type_changed" and not change.safe_widening
    return True


def without(schema: pa.Schema, ignored: frozenset[str] | set[str]) -> pa.Schema:
    return pa.schema([f for f in schema if f.name not in ignored]) if ignored else schema


def decide(policy: str, table: pa.Schema | None, incoming: pa.Schema) -> SchemaDecision:
    """The target schema for files whose blocking changes have been taken out (see `classify`).

    Never changes an existing column's type except a safe widening under `auto_merge`; values that do
    not fit the table type go to `_rescued_data` rather than being cast silently. New columns are
    added unless the policy is `rescue`, which keeps the table schema. `fail` stops on any blocking change.
    """
    incoming = pa.schema([pa.field(f.name, normalize_type(f.type), True) for f in data_fields(incoming)])
    if table is None:
        return SchemaDecision("evolve", incoming)
    table_data = pa.schema(data_fields(table))
    changes = diff_schemas(table_data, incoming)
    notes = [c.describe() for c in changes if c.kind == "removed"]
    if policy == "fail" and any(blocks(policy, c) for c in changes):
        return SchemaDecision("fail", table_data, changes, notes)
    added = [c for c in changes if c.kind == "added" and "." not in c.column]
    changed = [c for c in changes if c.kind == "type_changed"]
    widen = [
        incoming.field(c.column) for c in changed if policy == "auto_merge" and c.safe_widening and "." not in c.column
    ]
    widened = {f.name for f in widen}
    notes += [
        f"{c.describe()}: values that do not fit {c.old_type} go to {RESCUED}"
        for c in changed
        if c.column not in widened
    ]
    widened_fields = {f.name: f for f in widen}
    target = pa.schema([widened_fields.get(f.name, f) for f in table_data])
    if added and policy != "rescue":
        target = pa.schema([*target, *(incoming.field(c.column) for c in added)])
    elif added:
        notes += [f"{c.describe()}: kept in {RESCUED} (policy rescue)" for c in added]
    evolve = bool(widen) or (bool(added) and policy != "rescue")
    return SchemaDecision("evolve" if evolve else "proceed", target, changes, notes, widen)


@dataclass(slots=True)
class Classification:
    """A batch split by schema: files to load now, and files held for review with their blocking changes."""

    load: list[str]
    held: dict[str, list[SchemaChange]]
    blocking: list[SchemaChange]


def classify(
    policy: str, table: pa.Schema, file_schemas: dict[str, pa.Schema], ignored: frozenset[str] = frozenset()
) -> Classification:
    """Compare every file's schema with the table's; files with a change the policy does not take are held."""
    load: list[str] = []
    held: dict[str, list[SchemaChange]] = {}
    seen: dict[tuple[str, str], SchemaChange] = {}
    table_data = pa.schema(data_fields(table))
    for path, schema in file_schemas.items():
        stoppers = [c for c in diff_schemas(table_data, without(schema, ignored)) if blocks(policy, c)]
        if stoppers:
            held[path] = stoppers
            for change in stoppers:
                seen.setdefault((change.kind, change.column), change)
        else:
            load.append(path)
    return Classification(load, held, list(seen.values()))

"""Schema comparison and the schema-change policy, as pure functions over Arrow schemas."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pyarrow as pa

from core.formats.types import type_name
from core.formats.unify import holds, normalize_type, nulls_to_string, unify_types, widening

RESCUED = "_rescued_data"
LINEAGE_COLUMNS = ("_source_file", "_ingested_at", "_run_id")
SYSTEM_COLUMNS = frozenset((RESCUED, *LINEAGE_COLUMNS))

ChangeKind = Literal["added", "removed", "type_changed", "nullability_changed"]


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
    """Every difference between the table's data columns and the incoming ones, nested fields included.

    Types follow the lattice (core.formats.unify): incoming values the column holds exactly are no change;
    a change whose join is short of string is a safe widening, and its `new_type` is the joined type.
    Names match without regard to case; a column spelled differently from the table's is no change either
    (its values are rescued).
    """
    changes: list[SchemaChange] = []
    current = {f.name.lower(): f for f in data_fields(table)}
    new = {f.name.lower(): f for f in data_fields(incoming)}
    for key, f in new.items():
        path = prefix + f.name
        old = current.get(key)
        if old is None:  # an added column with no value yet is added as string (`nulls_to_string`)
            added = nulls_to_string(pa.schema([f])).field(0).type
            changes.append(SchemaChange("added", path, new_type=type_name(normalize_type(added))))
            continue
        if old.name != f.name:
            continue
        old_t, new_t = normalize_type(old.type), normalize_type(f.type)
        if pa.types.is_struct(old_t) and pa.types.is_struct(new_t):
            changes.extend(diff_schemas(pa.schema(list(old_t)), pa.schema(list(new_t)), prefix=path + "."))
        else:
            changes.extend(_added_inside_elements(path, old_t, new_t))
            if not holds(with_added_fields(old_t, new_t), new_t):  # anything but fields added in a list's structs
                wider = widening(old_t, new_t)
                shown = type_name(wider) if wider is not None else type_name(new_t)
                changes.append(
                    SchemaChange("type_changed", path, type_name(old_t), shown, safe_widening=wider is not None)
                )
        if old.nullable is False and f.nullable:
            changes.append(SchemaChange("nullability_changed", path, type_name(old_t), type_name(new_t)))
    changes.extend(
        SchemaChange("removed", prefix + f.name, old_type=type_name(normalize_type(f.type)))
        for key, f in current.items()
        if key not in new
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


def merged_changes(earlier: list[dict[str, Any]], later: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A pending version's changes (as `SchemaChange.as_dict`) extended by a later run's: a change of the same kind
    and column replaces the earlier one in its place (the later one was worked out over every held file), new ones
    follow."""
    merged = {(c["kind"], c["column"]): c for c in earlier}
    merged.update({(c["kind"], c["column"]): c for c in later})
    return list(merged.values())


def blocks(policy: str, change: SchemaChange) -> bool:
    """Whether a change stops a file from loading under a policy (it is then held for review, or fails).

    Removed columns and nullability never block: new rows get NULL. `rescue` never blocks: unknown or
    mismatched values go to `_rescued_data`. A safe widening (the lattice's join short of string) blocks
    only under `fail`: under `pause` and `auto_merge` the column is widened and nothing waits for review.
    `auto_merge` takes added columns too; an incompatible change falls back to `pause` (PRODUCT.md §7): the
    files are held for review.
    """
    if change.kind in ("removed", "nullability_changed") or policy == "rescue":
        return False
    if change.kind == "type_changed" and change.safe_widening:
        return policy == "fail"
    if policy == "auto_merge":
        return change.kind == "type_changed"
    return True


def without(schema: pa.Schema, ignored: frozenset[str] | set[str]) -> pa.Schema:
    return pa.schema([f for f in schema if f.name not in ignored]) if ignored else schema


def decide(policy: str, table: pa.Schema | None, incoming: pa.Schema, nested: bool = True) -> SchemaDecision:
    """The target schema for files whose blocking changes have been taken out (see `classify`).

    Never changes an existing column's type except a safe widening (to the lattice's join) under `pause`
    or `auto_merge`; values that do not fit the table type go to `_rescued_data` rather than being cast
    silently. New columns are added unless the policy is `rescue`, which keeps the table schema. `fail`
    stops on any blocking change. Fields added inside a struct column are added under `auto_merge` when the table
    takes them (`nested`: Delta and Iceberg do, a Hive table on Spark does not), the struct's type grown by them
    (`with_added_fields`); otherwise the run says they are not.
    """
    incoming = pa.schema(
        [pa.field(f.name, normalize_type(f.type), True, metadata=f.metadata) for f in data_fields(incoming)]
    )
    if table is None:
        return SchemaDecision("evolve", incoming)
    table_data = pa.schema(data_fields(table))
    changes = diff_schemas(table_data, incoming)
    notes = [c.describe() for c in changes if c.kind == "removed"]
    notes += _case_notes(table_data, incoming)
    if policy == "fail" and any(blocks(policy, c) for c in changes):
        return SchemaDecision("fail", table_data, changes, notes)
    added = [c for c in changes if c.kind == "added" and "." not in c.column]
    inside = [c for c in changes if c.kind == "added" and "." in c.column]
    grown = grown_structs(table_data, list(incoming)) if policy == "auto_merge" and nested else {}
    notes += [  # not evolved: said, instead of dropped (Spark) or moved whole to the rescue column without a word
        f"{c.describe()}: fields added inside a struct are not added to this table; its values are not loaded as a "
        f"column (the embedded engine keeps the column's whole value, the struct or the list, in {RESCUED})"
        for c in inside
        if policy in ("auto_merge", "rescue") and not grown
    ]
    changed = [c for c in changes if c.kind == "type_changed"]
    widen = [
        pa.field(c.column, unify_types(table_data.field(c.column).type, incoming.field(c.column).type))
        for c in changed
        if policy in ("pause", "auto_merge") and c.safe_widening and "." not in c.column
    ]
    widened = {f.name for f in widen}
    notes += [
        f"{c.describe()}: values that do not fit {c.old_type} go to {RESCUED}"
        for c in changed
        if c.column not in widened
    ]
    widened_fields = {f.name: f for f in widen}
    target = pa.schema([widened_fields.get(f.name, f) for f in table_data])
    target = pa.schema([f if f.name in widened else f.with_type(grown.get(f.name, f.type)) for f in target])
    if added and policy != "rescue":
        target = pa.schema([*target, *(incoming.field(c.column) for c in added)])
    elif added:
        notes += [f"{c.describe()}: kept in {RESCUED} (policy rescue)" for c in added]
    evolve = bool(widen) or bool(grown) or (bool(added) and policy != "rescue")
    return SchemaDecision("evolve" if evolve else "proceed", target, changes, notes, widen)


def adds_inside_structs(table: pa.Schema, incoming: pa.Schema) -> bool:
    """Whether `incoming` adds a field inside one of the table's struct columns."""
    return bool(grown_structs(table, list(incoming)))


def grown_structs(table: pa.Schema, fields: list[pa.Field]) -> dict[str, pa.DataType]:
    """The table's struct columns that `fields` (of the same names) add fields inside, with their grown types."""
    grown = {}
    for f in fields:
        if f.name in table.names:
            held = table.field(f.name).type
            wider = with_added_fields(held, f.type)
            if wider != held:
                grown[f.name] = wider
    return grown


def _element_structs(table: pa.DataType, incoming: pa.DataType) -> tuple[str, pa.DataType, pa.DataType] | None:
    """For a list (or a map) of structs on both sides: the step naming its element (`element`, or the map's `value`,
    as Delta's and Iceberg's ALTER TABLE name it) and the two element types."""
    if pa.types.is_list(table) and pa.types.is_list(incoming):
        pair = ("element", table.value_type, incoming.value_type)
    elif pa.types.is_map(table) and pa.types.is_map(incoming):
        pair = ("value", table.item_type, incoming.item_type)
    else:
        return None
    return pair if pa.types.is_struct(pair[1]) or _element_structs(pair[1], pair[2]) is not None else None


def _added_inside_elements(path: str, table: pa.DataType, incoming: pa.DataType) -> list[SchemaChange]:
    """The fields a list's or a map's structs add (`items.element.coupon`): new fields as inside a struct column,
    where the lattice alone would call the whole column a safe widening and take it without review."""
    inner = _element_structs(table, incoming)
    if inner is None:
        return []
    step, held, theirs = inner
    path = f"{path}.{step}"
    if not (pa.types.is_struct(held) and pa.types.is_struct(theirs)):
        return _added_inside_elements(path, held, theirs)
    nested = diff_schemas(pa.schema(list(held)), pa.schema(list(theirs)), prefix=path + ".")
    return [c for c in nested if c.kind == "added"]


def with_added_fields(table: pa.DataType, incoming: pa.DataType) -> pa.DataType:
    """The struct type `table` with the fields `incoming` adds at any depth, after its own (a field spelled
    differently, or typed differently, stays as the table has it: `diff_schemas` names those changes), also inside
    the structs of a list or a map. A new field with no value yet is text, as a new column is (`nulls_to_string`)."""
    if pa.types.is_list(table) and pa.types.is_list(incoming):
        element = with_added_fields(table.value_type, incoming.value_type)
        return table if element == table.value_type else pa.list_(table.value_field.with_type(element))
    if pa.types.is_map(table) and pa.types.is_map(incoming):
        value = with_added_fields(table.item_type, incoming.item_type)
        if value == table.item_type:
            return table
        return pa.map_(table.key_field, table.item_field.with_type(value), table.keys_sorted)
    if not (pa.types.is_struct(table) and pa.types.is_struct(incoming)):
        return table
    theirs = {f.name.lower(): f for f in incoming}
    known = {f.name.lower() for f in table}
    kept = [
        f.with_type(with_added_fields(f.type, theirs[f.name.lower()].type))
        if f.name.lower() in theirs and theirs[f.name.lower()].name == f.name
        else f
        for f in table
    ]
    new = [f.with_nullable(True) for key, f in theirs.items() if key not in known]
    return pa.struct(kept + list(nulls_to_string(pa.schema(new))))


def _case_notes(table: pa.Schema, incoming: pa.Schema) -> list[str]:
    spelled = {f.name.lower(): f.name for f in table}
    return [
        f"column '{f.name}' differs from '{spelled[f.name.lower()]}' only by case: its values go to {RESCUED}"
        for f in incoming
        if f.name.lower() in spelled and spelled[f.name.lower()] != f.name
    ]


@dataclass(slots=True)
class Classification:
    """A batch split by schema: files to load now, and files held for review with their blocking changes."""

    load: list[str]
    held: dict[str, list[SchemaChange]]
    blocking: list[SchemaChange]


def hold_together(split: Classification, paths: Iterable[str]) -> Classification:
    """The split of an overwrite run: its files replace the table together, so one held file holds them all (the
    others loaded alone, then the release of the held one replaced their rows with its own, and the ledger still
    called them loaded: an outside attack)."""
    return Classification(load=[], held={p: split.held.get(p, []) for p in paths}, blocking=split.blocking)


def classify(
    policy: str, table: pa.Schema, file_schemas: dict[str, pa.Schema], ignored: frozenset[str] = frozenset()
) -> Classification:
    """Compare every file's schema with the table's; files with a change the policy does not take are held."""
    load: list[str] = []
    held: dict[str, list[SchemaChange]] = {}
    seen: dict[tuple[str, str], SchemaChange] = {}
    table_data = pa.schema(data_fields(table))
    # Files mostly share a schema: each distinct one is compared once (a Schema hashes and compares by its fields,
    # names, types and nullability, all `diff_schemas` reads). 100,000 files cost 90,000 comparisons before.
    verdicts: dict[pa.Schema, list[SchemaChange]] = {}
    for path, schema in file_schemas.items():
        stoppers = verdicts.get(schema)
        if stoppers is None:
            stoppers = [c for c in diff_schemas(table_data, without(schema, ignored)) if blocks(policy, c)]
            verdicts[schema] = stoppers
        if stoppers:
            held[path] = stoppers
            for change in stoppers:
                seen.setdefault((change.kind, change.column), change)
        else:
            load.append(path)
    return Classification(load, held, list(seen.values()))

"""The schema diff and the schema-change policy, over a table of cases."""

from __future__ import annotations

import pyarrow as pa
import pytest

from core.schema import (
    SchemaChange,
    adds_inside_structs,
    blocks,
    classify,
    decide,
    diff_schemas,
    with_added_fields,
)

BASE = pa.schema([("id", pa.int64()), ("name", pa.string()), ("score", pa.int32())])


@pytest.mark.parametrize(
    ("incoming", "expected"),
    [
        (BASE, []),
        (
            pa.schema([*BASE, ("vip", pa.bool_())]),
            [SchemaChange("added", "vip", new_type="boolean")],
        ),
        (
            pa.schema([("id", pa.int64()), ("name", pa.string())]),
            [SchemaChange("removed", "score", old_type="int")],
        ),
        (
            pa.schema([("id", pa.int64()), ("name", pa.string()), ("score", pa.int64())]),
            [SchemaChange("type_changed", "score", "int", "bigint", safe_widening=True)],
        ),
        (
            pa.schema([("id", pa.int64()), ("name", pa.string()), ("score", pa.float64())]),
            [SchemaChange("type_changed", "score", "int", "double", safe_widening=True)],
        ),
        (
            pa.schema([("id", pa.int32()), ("name", pa.string()), ("score", pa.int32())]),
            [],
        ),
        (
            pa.schema([("id", pa.string()), ("name", pa.string()), ("score", pa.int32())]),
            [SchemaChange("type_changed", "id", "bigint", "string", safe_widening=False)],
        ),
        (
            pa.schema([("ID", pa.int64()), ("name", pa.string()), ("score", pa.int32())]),
            [],
        ),
        (
            pa.schema([*BASE, ("_rescued_data", pa.string()), ("_source_file", pa.string())]),
            [],
        ),
        (
            pa.schema([("id", pa.int64()), ("name", pa.large_string()), ("score", pa.int32())]),
            [],
        ),
    ],
    ids=[
        "same",
        "added",
        "removed",
        "widened",
        "int-to-double",
        "narrowed",
        "incompatible",
        "case-only",
        "system",
        "large",
    ],
)
def test_diff_cases(incoming: pa.Schema, expected: list[SchemaChange]) -> None:
    assert diff_schemas(BASE, incoming) == expected


def test_nested_struct_changes() -> None:
    table = pa.schema([("user", pa.struct([("id", pa.int64()), ("email", pa.string())]))])
    incoming = pa.schema([("user", pa.struct([("id", pa.int64()), ("email", pa.string()), ("age", pa.int32())]))])
    assert diff_schemas(table, incoming) == [SchemaChange("added", "user.age", new_type="int")]


def test_a_field_added_inside_a_struct_grows_the_struct_under_auto_merge() -> None:
    """The struct column takes the fields added inside it, at any depth, after its own; a new field with no value
    yet is text. Until 2026-12-06 it was said and not added (the embedded engine moved the whole struct to the
    rescue column)."""
    table = pa.schema([("user", pa.struct([("id", pa.int64()), ("a", pa.struct([("b", pa.int64())]))]))])
    incoming = pa.schema(
        [("user", pa.struct([("age", pa.int32()), ("id", pa.int64()), ("a", pa.struct([("c", pa.null())]))]))]
    )
    decision = decide("auto_merge", table, incoming)
    assert decision.action == "evolve" and decision.notes == ["column 'user.a.b' missing from the new files"]
    grown = pa.struct(
        [("id", pa.int64()), ("a", pa.struct([("b", pa.int64()), ("c", pa.string())])), ("age", pa.int32())]
    )
    assert decision.target.field("user").type == grown
    assert [(c.kind, c.column) for c in decision.changes] == [
        ("added", "user.age"),
        ("added", "user.a.c"),
        ("removed", "user.a.b"),
    ]


def test_a_field_spelled_differently_inside_a_struct_is_not_added_twice() -> None:
    table = pa.schema([("user", pa.struct([("id", pa.int64())]))])
    incoming = pa.schema([("user", pa.struct([("ID", pa.int64()), ("x", pa.string())]))])
    assert with_added_fields(table.field("user").type, incoming.field("user").type) == pa.struct(
        [("id", pa.int64()), ("x", pa.string())]
    )


def test_a_field_added_inside_a_struct_is_said_where_the_table_cannot_take_it() -> None:
    """A table that cannot take nested fields (a Hive table on Spark), and the rescue policy: said, not added."""
    table = pa.schema([("user", pa.struct([("id", pa.int64())]))])
    incoming = pa.schema([("user", pa.struct([("id", pa.int64()), ("age", pa.int32())]))])
    assert adds_inside_structs(table, incoming) and not adds_inside_structs(table, table)
    for policy, nested in (("auto_merge", False), ("rescue", True)):
        decision = decide(policy, table, incoming, nested)
        assert decision.action == "proceed" and decision.target == table
        (note,) = [n for n in decision.notes if "user.age" in n]
        assert "fields added inside a struct are not added" in note


def test_resolutions_of_a_field_added_inside_a_struct() -> None:
    """auto_merge adds it (the struct column is named to the engine); backfill and ignore cannot apply and say so
    (applied, they held the files again: an outside attack)."""
    from core.errors import Conflict
    from core.schema_resolution import plan_resolution

    table = pa.schema([("user", pa.struct([("id", pa.int64())]))])
    incoming = pa.schema([("user", pa.struct([("id", pa.int64()), ("age", pa.int32())]))])
    changes = [c.as_dict() for c in diff_schemas(table, incoming)]
    proposed = [{"name": "user", "type": "struct<id:bigint,age:int>"}]
    plan = plan_resolution("auto_merge", "main.raw.t", proposed, changes)
    assert plan.grown == ["user"] and plan.added == []
    assert plan.statements == ["ALTER TABLE main.raw.t ADD COLUMNS (`user`.`age` int)"]
    for resolution in ("backfill_default", "ignore"):
        with pytest.raises(Conflict, match="inside a struct column"):
            plan_resolution(resolution, "main.raw.t", proposed, changes, {"user.age": 0})
    assert plan_resolution("new_table", "main.raw.t", proposed, changes).new_table == "main.raw.t_v2"


def test_date_to_timestamp_is_a_safe_widening() -> None:
    (change,) = diff_schemas(pa.schema([("d", pa.date32())]), pa.schema([("d", pa.timestamp("ms"))]))
    assert change.safe_widening and change.new_type == "timestamp"


def test_decide_without_a_table_creates_it() -> None:
    decision = decide("pause", None, BASE)
    assert decision.action == "evolve" and decision.target.names == BASE.names


@pytest.mark.parametrize(
    ("policy", "action", "columns"),
    [
        ("auto_merge", "evolve", ["id", "name", "score", "vip"]),
        ("pause", "evolve", ["id", "name", "score", "vip"]),
        ("rescue", "proceed", ["id", "name", "score"]),
        ("fail", "fail", ["id", "name", "score"]),
    ],
)
def test_policies_for_a_new_column(policy: str, action: str, columns: list[str]) -> None:
    decision = decide(policy, BASE, pa.schema([*BASE, ("vip", pa.bool_())]))
    assert decision.action == action
    assert decision.target.names == columns
    if policy == "fail":
        assert "vip" in decision.message


def test_type_change_keeps_the_table_type_and_says_so() -> None:
    decision = decide(
        "auto_merge", BASE, pa.schema([("id", pa.string()), ("name", pa.string()), ("score", pa.int32())])
    )
    assert decision.action == "proceed"
    assert decision.target.field("id").type == pa.int64()
    assert any("_rescued_data" in note for note in decision.notes)


def test_removed_column_is_noted_and_kept() -> None:
    decision = decide("fail", BASE, pa.schema([("id", pa.int64())]))
    assert decision.action == "proceed" and decision.target.names == BASE.names
    assert decision.notes == ["column 'name' missing from the new files", "column 'score' missing from the new files"]


TS = pa.timestamp("us", tz="UTC")


@pytest.mark.parametrize(
    ("column", "incoming", "expected"),
    [
        (pa.float64(), pa.int64(), "held"),
        (pa.decimal128(10, 2), pa.int64(), "held"),
        (pa.decimal128(10, 2), pa.decimal128(5, 1), "held"),
        (TS, pa.date32(), "held"),
        (TS, pa.timestamp("s"), "held"),
        (pa.string(), pa.int64(), "held"),
        (pa.int64(), pa.int32(), "held"),
        (pa.int32(), pa.int64(), "bigint"),
        (pa.int64(), pa.float64(), "double"),
        (pa.decimal128(10, 2), pa.decimal128(12, 4), "decimal(12,4)"),
        (pa.decimal128(10, 2), pa.decimal128(12, 1), "decimal(13,2)"),
        (pa.decimal128(10, 2), pa.float64(), "double"),
        (pa.date32(), TS, "timestamp"),
        (pa.int64(), pa.string(), "incompatible"),
        (pa.bool_(), pa.int64(), "incompatible"),
        (pa.date32(), pa.int64(), "incompatible"),
        (pa.decimal128(17, 16), pa.decimal128(38, 0), "incompatible"),  # the join is double: values would round
        (pa.decimal128(15, 2), pa.float64(), "double"),
    ],
)
def test_type_lattice(column: pa.DataType, incoming: pa.DataType, expected: str) -> None:
    changes = diff_schemas(pa.schema([("c", column)]), pa.schema([("c", incoming)]))
    if expected == "held":
        assert changes == []
    elif expected == "incompatible":
        assert [c.safe_widening for c in changes] == [False]
    else:
        assert [(c.safe_widening, c.new_type) for c in changes] == [(True, expected)]


@pytest.mark.parametrize(("policy", "widened"), [("pause", True), ("auto_merge", True), ("rescue", False)])
def test_a_safe_widening_never_waits_for_review(policy: str, widened: bool) -> None:
    table = pa.schema([("amount", pa.decimal128(10, 2))])
    decision = decide(policy, table, pa.schema([("amount", pa.decimal128(12, 4))]))
    assert decision.action != "fail"
    assert decision.target.field("amount").type == (pa.decimal128(12, 4) if widened else pa.decimal128(10, 2))


def test_fail_policy_stops_on_a_widening() -> None:
    decision = decide("fail", pa.schema([("n", pa.int32())]), pa.schema([("n", pa.int64())]))
    assert decision.action == "fail"


def test_a_case_variant_column_is_rescued_not_added() -> None:
    decision = decide("auto_merge", BASE, pa.schema([("ID", pa.int64()), ("name", pa.string())]))
    assert decision.target.names == BASE.names
    assert any("'ID' differs from 'id' only by case" in note for note in decision.notes)


def test_classify_holds_each_file_by_its_own_schema() -> None:
    """Each distinct schema is compared once and its verdict given to every file with an equal one: files with
    the table's schema load, a column turned string or an added column holds its files under `pause` (a field's
    metadata does not make a schema differ), nothing holds under `rescue`."""
    table = pa.schema([("id", pa.int64()), ("name", pa.string())])
    same = pa.schema([("id", pa.int64()), ("name", pa.string())])
    widened = pa.schema([("id", pa.string()), ("name", pa.string())])
    tagged = pa.schema([pa.field("id", pa.string(), metadata={"autoloader.source_name": "id"}), ("name", pa.string())])
    added = pa.schema([("id", pa.int64()), ("name", pa.string()), ("extra", pa.float64())])
    files = {"a": same, "b": widened, "c": same, "d": tagged, "e": added}
    split = classify("pause", table, files)
    assert split.load == ["a", "c"] and sorted(split.held) == ["b", "d", "e"]
    assert [c.column for c in split.held["b"]] == [c.column for c in split.held["d"]] == ["id"]
    assert [(c.kind, c.column) for c in split.held["e"]] == [("added", "extra")]
    assert classify("rescue", table, files).load == ["a", "b", "c", "d", "e"]


ITEM = pa.struct([("sku", pa.string())])
ITEM_WITH_QTY = pa.struct([("sku", pa.string()), ("qty", pa.int64())])


def test_a_field_added_inside_a_list_or_a_map_of_structs_is_a_new_field() -> None:
    """As inside a struct column: named by its path (`element` and `value` are the steps Delta's and Iceberg's ADD
    COLUMNS take), held under pause, added under auto_merge. The lattice alone called the whole column a safe
    widening: taken without review under pause, and the embedded engine rewrote the whole table for it."""
    table = pa.schema(
        [("items", pa.list_(ITEM)), ("attrs", pa.map_(pa.string(), ITEM)), ("grid", pa.list_(pa.list_(ITEM)))]
    )
    incoming = pa.schema(
        [
            ("items", pa.large_list(ITEM_WITH_QTY)),
            ("attrs", pa.map_(pa.string(), ITEM_WITH_QTY)),
            ("grid", pa.list_(pa.list_(pa.struct([("sku", pa.string()), ("note", pa.null())])))),
        ]
    )
    changes = diff_schemas(table, incoming)
    assert changes == [
        SchemaChange("added", "items.element.qty", new_type="bigint"),
        SchemaChange("added", "attrs.value.qty", new_type="bigint"),
        SchemaChange("added", "grid.element.element.note", new_type="string"),
    ]
    assert all(blocks("pause", c) for c in changes) and not any(blocks("auto_merge", c) for c in changes)
    merged = decide("auto_merge", table, incoming)
    assert merged.action == "evolve" and merged.widen == []
    assert merged.target.field("items").type == pa.list_(ITEM_WITH_QTY)
    assert merged.target.field("attrs").type == pa.map_(pa.string(), ITEM_WITH_QTY)
    assert merged.target.field("grid").type == pa.list_(
        pa.list_(pa.struct([("sku", pa.string()), ("note", pa.string())]))
    )
    assert adds_inside_structs(table, incoming)


def test_a_list_of_structs_that_adds_a_field_and_widens_another_is_widened_whole() -> None:
    """The added field is named (it needs a review under pause); the widening is the whole column's, as before, and
    the widened type already holds the added field (the grown type does not replace it)."""
    table = pa.schema([("items", pa.list_(pa.struct([("n", pa.int32())])))])
    incoming = pa.schema([("items", pa.list_(pa.struct([("n", pa.int64()), ("qty", pa.int64())])))])
    wider = pa.list_(pa.struct([("n", pa.int64()), ("qty", pa.int64())]))
    assert [(c.kind, c.column, c.safe_widening) for c in diff_schemas(table, incoming)] == [
        ("added", "items.element.qty", False),
        ("type_changed", "items", True),
    ]
    decision = decide("auto_merge", table, incoming)
    assert decision.widen == [pa.field("items", wider)] and decision.target.field("items").type == wider


def test_a_list_or_struct_turned_into_text_is_still_a_type_change() -> None:
    for held in (pa.list_(ITEM), pa.struct([("sku", pa.string())]), pa.map_(pa.string(), ITEM)):
        (change,) = diff_schemas(pa.schema([("c", held)]), pa.schema([("c", pa.string())]))
        assert (change.kind, change.safe_widening) == ("type_changed", False)
    same = pa.schema([("items", pa.list_(ITEM_WITH_QTY))])
    assert diff_schemas(same, pa.schema([("items", pa.list_(ITEM))])) == []  # a field the files lack: no change


def test_a_nested_join_that_turns_stored_values_into_text_is_no_widening() -> None:
    """At every depth of a list, map or struct, as at the top: a list of structs joined with a list of strings is a
    list of strings, and `n` bigint joined with string is string; the stored values would change meaning. Found
    by an attack: called safe widenings, they were applied without review."""
    from core.formats.unify import widening

    numbers = pa.list_(pa.struct([("n", pa.int64())]))
    assert widening(numbers, pa.list_(pa.struct([("n", pa.string())]))) is None
    assert widening(pa.list_(ITEM), pa.list_(pa.string())) is None
    assert widening(pa.map_(pa.string(), pa.decimal128(20, 2)), pa.map_(pa.string(), pa.float64())) is None
    assert widening(numbers, pa.list_(pa.struct([("n", pa.float64())]))) == pa.list_(pa.struct([("n", pa.float64())]))
    assert widening(pa.list_(pa.int32()), pa.list_(pa.int64())) == pa.list_(pa.int64())


def test_empty_lists_and_fields_with_no_value_take_the_tables_types_inside_lists_and_maps() -> None:
    from core.formats.unify import nulls_to_table_types

    held = pa.list_(pa.struct([("sku", pa.string()), ("qty", pa.int64())]))
    table = pa.schema([("items", held), ("attrs", pa.map_(pa.string(), held))])
    incoming = pa.schema(
        [
            ("items", pa.list_(pa.struct([("sku", pa.string()), ("qty", pa.null())]))),
            ("attrs", pa.map_(pa.string(), pa.list_(pa.null()))),
        ]
    )
    assert nulls_to_table_types(incoming, table) == table
    assert nulls_to_table_types(pa.schema([("items", pa.list_(pa.null()))]), table).field("items").type == held

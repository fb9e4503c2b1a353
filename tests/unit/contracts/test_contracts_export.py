"""Exported contracts: standard validators agree with mloop's own validator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import frictionless
import jsonschema
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mloop.contracts import (
    Column,
    Schema,
    export_contract,
    infer_schema,
    parse_text_columns,
    schema_from_document,
)

SCHEMA = Schema(
    (
        Column("income", "float", nullable=True, min=0.0, max=10_000.0),
        Column("age", "integer", min=18, max=99),
        Column("member", "boolean"),
        Column("city", "string", categories=("oslo", "paris")),
        Column("note", "string", nullable=True),
        Column("seen", "datetime", nullable=True),
    )
)
GOOD = {
    "income": 1200.5,
    "age": 30,
    "member": True,
    "city": "oslo",
    "note": "hi",
    "seen": "2024-05-01T10:00:00Z",
}

# Values as JSON can carry them (no NaN or infinity); datetimes are valid ISO text or not
# ISO at all (mloop parses a few more spellings than the exported ISO pattern admits).
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.sampled_from([0, 1, 17, 18, 99, 100, -1, 10_000, 10_001]),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from([0.5, 30.0, 99.0, 18.0, 1.0, 0.0]),
    st.sampled_from(["oslo", "paris", "rome", "", "x", "7"]),
    st.sampled_from(["2024-05-01", "2024-05-01T10:00:00", "2024-05-01 10:00:00+02:00", "soon"]),
    st.lists(st.integers(), max_size=2),
)
RECORDS = st.fixed_dictionaries(
    {},
    optional={
        **{name: VALUES for name in GOOD},
        "extra": VALUES,
    },
).map(lambda changed: {**GOOD, **changed})


def to_json_schema(schema: Schema, *, title: str = "", strict: bool = False) -> dict[str, Any]:
    return export_contract(schema, "json-schema", title=title, strict=strict)


def to_frictionless(schema: Schema, *, title: str = "", strict: bool = False) -> dict[str, Any]:
    return export_contract(schema, "frictionless", title=title, strict=strict)


MISSING = st.sampled_from([None, *GOOD])


def mloop_accepts(schema: Schema, record: dict[str, Any]) -> bool:
    return not [v for v in schema.validate([record]) if v.severity == "reject"]


@pytest.mark.parametrize("strict", [False, True])
def test_exported_json_schema_is_a_valid_draft_2020_12_schema(strict: bool) -> None:
    doc = to_json_schema(SCHEMA, title="demo", strict=strict)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc["required"] == list(SCHEMA.names)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=RECORDS, drop=MISSING)
def test_jsonschema_agrees_with_mloop_on_records(record: dict[str, Any], drop: str | None) -> None:
    if drop is not None:
        record.pop(drop)
    for schema in (
        SCHEMA,
        SCHEMA.with_policy(on_unknown_category="reject", on_out_of_range="reject"),
    ):
        validator = jsonschema.Draft202012Validator(to_json_schema(schema))
        assert validator.is_valid(record) == mloop_accepts(schema, record), (record, schema)


def test_default_export_leaves_flagged_expectations_to_annotations() -> None:
    out_of_range = {**GOOD, "age": 5, "city": "rome"}
    assert jsonschema.Draft202012Validator(to_json_schema(SCHEMA)).is_valid(out_of_range)
    strict = jsonschema.Draft202012Validator(to_json_schema(SCHEMA, strict=True))
    messages = sorted(e.message for e in strict.iter_errors(out_of_range))
    assert messages == [
        "'rome' is not one of ['oslo', 'paris']",
        "5 is less than the minimum of 18",
    ]


@pytest.mark.parametrize("to_document", [to_json_schema, to_frictionless])
@pytest.mark.parametrize("strict", [False, True])
def test_documents_read_back_as_the_same_contract(to_document: Any, strict: bool) -> None:
    doc = json.loads(json.dumps(to_document(SCHEMA, strict=strict)))
    expected = SCHEMA.with_policy(on_unknown_category="reject", on_out_of_range="reject")
    assert schema_from_document(doc) == (expected if strict else SCHEMA)


def test_inferred_contract_exports_and_reads_back() -> None:
    frame = pd.DataFrame(
        {
            "x": [1.5, None, 3.0],
            "n": [1, 2, 3],
            "flag": [True, False, True],
            "kind": ["a", "b", None],
            "at": pd.to_datetime(["2024-01-01", "2024-01-02", None]),
        }
    )
    schema = infer_schema(frame)
    back = schema_from_document(to_json_schema(schema))
    probe = [{"x": -1.0, "n": 7, "flag": 1, "kind": "c", "at": "2024-01-03"}]
    assert [v.message for v in back.validate(probe)] == [v.message for v in schema.validate(probe)]


def test_a_hand_written_json_schema_rejects_what_it_excludes() -> None:
    doc = {
        "type": "object",
        "properties": {
            "size": {"type": "number", "minimum": 1},
            "tag": {"enum": ["a"], "type": "string"},
        },
        "required": ["size", "tag"],
    }
    schema = schema_from_document(doc)
    rejects = [v.kind for v in schema.validate([{"size": 0, "tag": "b"}]) if v.severity == "reject"]
    assert rejects == ["out_of_range", "unknown_category"]


# --- Frictionless ----------------------------------------------------------------------

HEADER = "income,age,member,city,note,seen"
CSV_ROWS = [
    "1200.5,30,true,oslo,hi,2024-05-01T10:00:00Z",  # good
    ",18,FALSE,paris,,",  # nulls where allowed
    "12,5,1,rome,x,2024-05-01",  # out of range, unknown category (flagged by default)
    "abc,30,true,oslo,x,2024-05-01",  # not a number
    "1,30,yes,oslo,x,2024-05-01",  # not a flag
    "1,30,true,,x,2024-05-01",  # null city
    "1,,true,oslo,x,2024-05-01",  # null age
    "1,30,true,oslo,x,soon",  # not a date
    "1,30.5,true,oslo,x,2024-05-01",  # not whole
    "-3,100,0,oslo,7,2024-05-01 10:00:00",  # out of range both
]


def frictionless_bad_rows(tmp: Path, doc: dict[str, Any], text: str) -> set[int]:
    (tmp / "data.csv").write_text(text)
    resource = frictionless.Resource(
        path="data.csv", basepath=str(tmp), schema=frictionless.Schema.from_descriptor(doc)
    )
    report = resource.validate()
    rows = {
        int(row) - 2 if row is not None else -1
        for row, kind in report.flatten(["rowNumber", "type"])
    }
    return rows


def mloop_bad_rows(schema: Schema, text: str, tmp: Path) -> set[int]:
    (tmp / "data.csv").write_text(text)
    frame = pd.read_csv(tmp / "data.csv", dtype=str, keep_default_na=False, na_values=[""])
    violations = schema.validate(parse_text_columns(frame, schema))
    return {-1 if v.row is None else v.row for v in violations if v.severity == "reject"}


def test_exported_table_schema_is_valid_for_frictionless() -> None:
    for strict in (False, True):
        report = frictionless.validate(to_frictionless(SCHEMA, strict=strict), type="schema")
        assert report.valid, report.flatten(["type", "note"])


@pytest.mark.parametrize("strict", [False, True])
def test_frictionless_agrees_with_mloop_on_csv_rows(tmp_path: Path, strict: bool) -> None:
    schema = (
        SCHEMA.with_policy(on_unknown_category="reject", on_out_of_range="reject")
        if strict
        else SCHEMA
    )
    doc = to_frictionless(schema)
    text = "\n".join([HEADER, *CSV_ROWS]) + "\n"
    expected = mloop_bad_rows(schema, text, tmp_path)
    assert frictionless_bad_rows(tmp_path, doc, text) == expected
    assert expected == ({2, 3, 4, 5, 6, 7, 8, 9} if strict else {3, 4, 5, 6, 7, 8})


def test_frictionless_and_mloop_on_missing_and_extra_columns(tmp_path: Path) -> None:
    doc = to_frictionless(SCHEMA)
    extra = "extra," + HEADER + "\nz," + CSV_ROWS[0] + "\n"
    assert frictionless_bad_rows(tmp_path, doc, extra) == set()
    assert mloop_bad_rows(SCHEMA, extra, tmp_path) == set()
    missing = "income,age,member,city,note\n1,30,true,oslo,x\n"
    assert frictionless_bad_rows(tmp_path, doc, missing) == {-1}
    assert mloop_bad_rows(SCHEMA, missing, tmp_path) == {-1}

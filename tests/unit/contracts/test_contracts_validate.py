"""Validating records, column mappings and frames against a contract."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mloop.contracts import Column, Schema, Violation, infer_schema
from mloop.errors import InvalidInput


@pytest.fixture
def schema() -> Schema:
    return Schema(
        (
            Column("income", "float", nullable=True, min=0.0, max=10_000.0),
            Column("age", "integer", min=18, max=99),
            Column("member", "boolean"),
            Column("city", "string", categories=("oslo", "paris")),
        )
    )


GOOD = {"income": 1200.0, "age": 30, "member": True, "city": "oslo"}


def kinds(violations: list[Violation]) -> list[tuple[str, str, int | None, str]]:
    return [(v.kind, v.field, v.row, v.severity) for v in violations]


def test_good_record_gives_contract_frame(schema: Schema) -> None:
    frame, violations = schema.coerce([GOOD])
    assert violations == []
    assert list(frame.columns) == ["income", "age", "member", "city"]
    assert frame.dtypes.astype(str).tolist() == ["float64", "int64", "bool", "object"]
    assert frame.to_dict("records") == [GOOD]


def test_ints_for_float_and_whole_floats_for_integers_are_fine(schema: Schema) -> None:
    frame, violations = schema.coerce([{**GOOD, "income": 5, "age": 40.0}])
    assert violations == []
    assert frame["income"].dtype == np.float64 and frame["income"].iloc[0] == 5.0
    assert frame["age"].dtype == np.int64 and frame["age"].iloc[0] == 40


def test_records_columns_and_frame_give_the_same_result(schema: Schema) -> None:
    records = [GOOD, {**GOOD, "income": None, "age": 55, "city": "paris"}]
    columns = {k: [r[k] for r in records] for k in GOOD}
    from_records, v1 = schema.coerce(records)
    from_columns, v2 = schema.coerce(columns)
    from_frame, v3 = schema.coerce(pd.DataFrame(records))
    assert v1 == v2 == v3 == []
    pd.testing.assert_frame_equal(from_records, from_columns)
    pd.testing.assert_frame_equal(from_records, from_frame)


def test_single_record_as_plain_object(schema: Schema) -> None:
    frame, violations = schema.coerce(GOOD)
    assert violations == [] and len(frame) == 1


def test_missing_column_always_rejects(schema: Schema) -> None:
    record = {k: v for k, v in GOOD.items() if k != "age"}
    frame, violations = schema.coerce([record, record])
    assert kinds(violations) == [("missing_column", "age", None, "reject")]
    assert violations[0].message == "Column 'age' is missing; send it with a whole number."
    assert list(frame.columns) == ["income", "age", "member", "city"]


def test_numeric_text_is_a_wrong_type(schema: Schema) -> None:
    _, violations = schema.coerce([GOOD, {**GOOD, "income": "3.5"}, {**GOOD, "age": "abc"}])
    assert kinds(violations) == [
        ("wrong_type", "income", 1, "reject"),
        ("wrong_type", "age", 2, "reject"),
    ]
    assert violations[1].message == "Column 'age' expects a whole number; row 2 has 'abc'."


@pytest.mark.parametrize(
    ("field", "value"),
    [("age", 30.5), ("age", True), ("income", False), ("member", "yes"), ("city", 7)],
)
def test_other_wrong_types(schema: Schema, field: str, value: object) -> None:
    _, violations = schema.coerce([{**GOOD, field: value}])
    assert kinds(violations) == [("wrong_type", field, 0, "reject")]


def test_booleans_accept_zero_and_one(schema: Schema) -> None:
    frame, violations = schema.coerce([{**GOOD, "member": 1}, {**GOOD, "member": 0}])
    assert violations == []
    assert frame["member"].tolist() == [True, False]


def test_null_where_not_allowed_rejects(schema: Schema) -> None:
    records = [{**GOOD, "age": None}, {**GOOD, "city": None}, {**GOOD, "income": None}]
    frame, violations = schema.coerce(records)
    assert kinds(violations) == [
        ("null_not_allowed", "age", 0, "reject"),
        ("null_not_allowed", "city", 1, "reject"),
    ]
    assert np.isnan(frame["income"].iloc[2])  # nullable: fine


def test_field_missing_from_some_records_is_a_null(schema: Schema) -> None:
    partial = {k: v for k, v in GOOD.items() if k != "income"}
    frame, violations = schema.coerce([GOOD, partial])
    assert violations == []
    assert np.isnan(frame["income"].iloc[1])


def test_unknown_category_flags_by_default(schema: Schema) -> None:
    _, violations = schema.coerce([{**GOOD, "city": "lima"}])
    assert kinds(violations) == [("unknown_category", "city", 0, "flag")]
    assert violations[0].expected == "one of 'oslo', 'paris'"


def test_unknown_category_can_reject(schema: Schema) -> None:
    strict = schema.with_policy(on_unknown_category="reject")
    _, violations = strict.coerce([{**GOOD, "city": "lima"}])
    assert kinds(violations) == [("unknown_category", "city", 0, "reject")]
    with pytest.raises(InvalidInput, match="row 0 has 'lima'"):
        strict.check([{**GOOD, "city": "lima"}])


def test_out_of_range_flags_or_rejects(schema: Schema) -> None:
    records = [{**GOOD, "age": 120}, {**GOOD, "income": -1.0}]
    _, violations = schema.coerce(records)
    assert kinds(violations) == [
        ("out_of_range", "income", 1, "flag"),
        ("out_of_range", "age", 0, "flag"),
    ]
    assert violations[1].value == 120
    assert violations[1].message == (
        "Column 'age' expects a whole number between 18 and 99; row 0 has 120."
    )
    strict = schema.with_policy(on_out_of_range="reject")
    assert {v.severity for v in strict.validate(records)} == {"reject"}
    assert len(schema.check(records)) == 2  # flags never block


def test_extra_columns_only_flag(schema: Schema) -> None:
    frame = schema.check([{**GOOD, "zip": "0150"}])
    assert list(frame.columns) == list(schema.names)
    assert kinds(schema.validate([{**GOOD, "zip": "0150"}])) == [
        ("unknown_column", "zip", None, "flag")
    ]


def test_check_lists_rejections_with_a_cap() -> None:
    schema = Schema((Column("x", "float"),))
    records = [{"x": "bad"} for _ in range(80)]
    with pytest.raises(InvalidInput) as caught:
        schema.check(records)
    error = caught.value
    assert error.message.startswith("Column 'x' expects a number; row 0 has 'bad'.")
    assert "79 more problems" in error.message
    body = error.to_dict()["error"]
    assert body["violation_count"] == 80
    assert len(body["violations"]) == 50 and body["violations_omitted"] == 30
    assert body["violations"][0]["kind"] == "wrong_type"
    json.dumps(body)


def test_violation_to_dict_is_json_ready() -> None:
    schema = Schema((Column("x", "float"),))
    (violation,) = schema.validate([{"x": {"nested": [1, 2]}}])
    data = violation.to_dict()
    assert data["value"] == "{'nested': [1, 2]}"
    assert set(data) == {"row", "field", "value", "expected", "kind", "severity", "message"}
    json.dumps(data)


def test_empty_input_gives_typed_empty_frame(schema: Schema) -> None:
    frame, violations = schema.coerce([])
    assert violations == [] and len(frame) == 0
    assert frame.dtypes.astype(str).tolist() == ["float64", "int64", "bool", "object"]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ("not records", "Expected a list of records"),
        ([GOOD, 3], "Record 1 is a int"),
        ({"income": [1.0], "age": 3}, "Mix of lists"),
        ({"income": [1.0, 2.0], "age": [3]}, "different lengths"),
    ],
)
def test_shapeless_input_raises_invalid_input(schema: Schema, data: object, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        schema.coerce(data)


def test_frame_input_checks_dtypes_per_column(schema: Schema) -> None:
    frame = pd.DataFrame(
        {"income": [1.0], "age": [30.5], "member": [True], "city": ["oslo"], "x": [1]}
    )
    assert kinds(schema.validate(frame)) == [
        ("wrong_type", "age", 0, "reject"),
        ("unknown_column", "x", None, "flag"),
    ]


def test_training_frame_round_trips_with_training_dtypes() -> None:
    train = pd.DataFrame(
        {
            "x": np.array([0.5, 1.5], dtype=np.float32),
            "n": np.array([1, 2], dtype=np.int32),
            "plan": pd.Categorical(["a", "b"]),
            "when": pd.to_datetime(["2024-01-01", "2024-01-02"]),
        }
    )
    schema = infer_schema(train)
    frame = schema.check(train)
    assert frame["x"].dtype == np.float32 and frame["n"].dtype == np.int32
    assert isinstance(frame["plan"].dtype, pd.CategoricalDtype)
    assert frame["plan"].cat.categories.tolist() == ["a", "b"]
    served = schema.check([{"x": 1, "n": 2, "plan": "b", "when": "2024-01-05T10:00:00"}])
    assert served["plan"].tolist() == ["b"] and served["x"].dtype == np.float32
    assert served["when"].iloc[0] == pd.Timestamp("2024-01-05 10:00:00")


def test_datetime_values_are_parsed_or_rejected() -> None:
    schema = Schema((Column("when", "datetime", nullable=True),))
    frame, violations = schema.coerce(
        [
            {"when": "2024-03-01T00:00:00Z"},
            {"when": None},
            {"when": "soon"},
            {"when": 5},
            {"when": ""},
        ]
    )
    assert kinds(violations) == [
        ("wrong_type", "when", 2, "reject"),
        ("wrong_type", "when", 3, "reject"),
        ("wrong_type", "when", 4, "reject"),
    ]
    assert frame["when"].iloc[0] == pd.Timestamp("2024-03-01")
    assert frame["when"].isna().tolist() == [False, True, True, True, True]


def test_huge_numbers_are_reported_not_raised() -> None:
    schema = Schema((Column("n", "integer"), Column("x", "float")))
    _, violations = schema.coerce([{"n": 10**30, "x": 10**400}])
    assert kinds(violations) == [("wrong_type", "n", 0, "reject"), ("wrong_type", "x", 0, "reject")]


def test_numeric_contract_gives_a_float_matrix() -> None:
    schema = Schema((Column("a", "float"), Column("n", "integer"), Column("b", "boolean")))
    assert schema.all_numeric
    matrix, violations = schema.coerce_matrix(
        [{"a": 1.5, "n": 2, "b": True}, {"a": 3, "n": 4, "b": 0}]
    )
    assert violations == []
    np.testing.assert_array_equal(matrix, [[1.5, 2.0, 1.0], [3.0, 4.0, 0.0]])
    matrix, violations = schema.coerce_matrix({"a": [None], "n": ["x"], "b": [False]})
    assert [v.kind for v in violations] == ["null_not_allowed", "wrong_type"]
    assert np.isnan(matrix[0, :2]).all()


def test_matrix_needs_a_numeric_contract(schema: Schema) -> None:
    assert not schema.all_numeric
    with pytest.raises(InvalidInput, match=r"\['city'\] are not numeric"):
        schema.coerce_matrix([GOOD])

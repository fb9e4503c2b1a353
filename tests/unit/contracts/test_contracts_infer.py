"""Inferring a contract from training data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import mloop.contracts as contracts
from mloop.contracts import Column, Schema, infer_schema
from mloop.errors import InvalidInput, NotFound


def training_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "income": [1200.5, 3400.0, np.nan, 5000.25],
            "age": [23, 41, 35, 67],
            "member": [True, False, True, False],
            "city": ["paris", None, "oslo", "paris"],
            "plan": pd.Categorical(["a", "b", "a", "b"]),
            "seen": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01"]),
        }
    )


def test_public_surface_is_stable() -> None:
    assert contracts.__all__ == sorted(contracts.__all__)
    assert set(contracts.__all__) == {
        "Calibration",
        "Column",
        "ExportFormat",
        "FeatureProfile",
        "Profile",
        "Schema",
        "Violation",
        "bin_counts",
        "build_profile",
        "export_contract",
        "infer_schema",
        "invalid_input",  # the one formatter of violations, serving uses it too
        "parse_text_columns",
        "schema_from_document",
    }


def test_mixed_frame_kinds_nullability_and_ranges() -> None:
    schema = infer_schema(training_frame())
    assert schema.names == ("income", "age", "member", "city", "plan", "seen")
    kinds = {c.name: c.kind for c in schema}
    assert kinds == {
        "income": "float",
        "age": "integer",
        "member": "boolean",
        "city": "string",
        "plan": "string",
        "seen": "datetime",
    }
    assert schema["income"].nullable and schema["city"].nullable
    assert not schema["age"].nullable and not schema["member"].nullable
    assert (schema["income"].min, schema["income"].max) == (1200.5, 5000.25)
    assert (schema["age"].min, schema["age"].max) == (23, 67)
    assert schema["city"].categories == ("oslo", "paris")
    assert schema["plan"].categories == ("a", "b")
    assert schema["plan"].dtype == "category"
    assert schema.on_unknown_category == "flag" and schema.on_out_of_range == "flag"


def test_v2_datatypes_for_serving() -> None:
    schema = infer_schema(training_frame())
    assert [schema.v2_datatype(n) for n in schema.names] == [
        "FP64",
        "INT64",
        "BOOL",
        "BYTES",
        "BYTES",
        "BYTES",
    ]


def test_unknown_column_lookup_says_what_exists() -> None:
    schema = infer_schema(training_frame())
    with pytest.raises(NotFound, match="no column 'salary'"):
        schema["salary"]


def test_ndarray_gets_positional_names_or_given_ones() -> None:
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    assert infer_schema(x).names == ("f0", "f1", "f2")
    named = infer_schema(x, feature_names=["a", "b", "c"])
    assert named.names == ("a", "b", "c")
    assert named["c"].kind == "float" and named["c"].max == 11.0
    assert infer_schema(np.array([[1, 2], [3, 4]]))["f0"].kind == "integer"


def test_ndarray_shape_and_name_mistakes_are_explained() -> None:
    with pytest.raises(InvalidInput, match="two-dimensional"):
        infer_schema(np.arange(3))
    with pytest.raises(InvalidInput, match="2 feature names for 3 columns"):
        infer_schema(np.zeros((2, 3)), feature_names=["a", "b"])


def test_many_distinct_strings_are_free_text() -> None:
    frame = pd.DataFrame({"note": [f"text {i}" for i in range(1500)]})
    column = infer_schema(frame)["note"]
    assert column.kind == "string" and column.categories is None
    _, violations = Schema((column,)).coerce([{"note": "never seen"}])
    assert violations == []


def test_object_columns_are_read_by_their_values() -> None:
    frame = pd.DataFrame(
        {
            "flag": pd.Series([True, None, False], dtype=object),
            "count": pd.Series([1, 2, None], dtype=object),
        }
    )
    schema = infer_schema(frame)
    assert schema["flag"].kind == "boolean" and schema["flag"].nullable
    assert schema["count"].kind == "integer"


def test_mixed_value_types_are_refused_with_a_fix() -> None:
    frame = pd.DataFrame({"code": pd.Series([1, "a", 2.5], dtype=object)})
    with pytest.raises(InvalidInput, match=r"astype\(str\)"):
        infer_schema(frame)


def test_schema_round_trips_through_json() -> None:
    schema = infer_schema(training_frame()).with_policy(on_unknown_category="reject")
    data = json.loads(json.dumps(schema.to_dict()))
    assert Schema.from_dict(data) == schema
    assert data["on_unknown_category"] == "reject"


def test_schema_rejects_duplicate_names_and_bad_policies() -> None:
    col = Column("a", "float")
    with pytest.raises(InvalidInput, match="unique"):
        Schema((col, col))
    with pytest.raises(InvalidInput, match="Policy"):
        Schema((col,), on_out_of_range="ignore")  # type: ignore[arg-type]

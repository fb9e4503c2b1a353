"""Raw library outputs become Predictions with original labels."""

from __future__ import annotations

import numpy as np
import pytest

from mloop.errors import FatalError
from mloop.flavors._outputs import (
    as_column,
    classification,
    json_ready,
    probability_matrix,
    regression,
)


def test_binary_probability_vector_becomes_two_columns() -> None:
    proba = probability_matrix(np.array([0.2, 0.9]))
    np.testing.assert_allclose(proba, [[0.8, 0.2], [0.1, 0.9]])


def test_labels_default_to_most_probable_original_class() -> None:
    got = classification(("no", "yes"), probabilities=np.array([[0.8, 0.2], [0.1, 0.9]]))
    assert got.labels is not None and got.labels.tolist() == ["no", "yes"]
    assert got.to_records()[1] == {"label": "yes", "probabilities": {"no": 0.1, "yes": 0.9}}


def test_wrong_probability_width_is_a_bug_not_a_silent_mismatch() -> None:
    with pytest.raises(FatalError, match="3 probability columns"):
        probability_matrix(np.ones((2, 3)), n_classes=2)


def test_regression_values_are_floats_and_strings_are_refused() -> None:
    got = regression(np.array([[1], [2]]))
    assert got.values is not None and got.values.dtype == np.float64
    assert got.to_records() == [{"value": 1.0}, {"value": 2.0}]
    with pytest.raises(FatalError, match="classes_"):
        regression(np.array(["a", "b"]))


def test_columns_and_json_ready_labels() -> None:
    assert as_column([[1], [2]]).tolist() == [1, 2]
    with pytest.raises(FatalError, match="shape"):
        as_column(np.ones((2, 2)))
    assert json_ready(np.array([1, 2])) == [1, 2]
    assert type(json_ready(np.array([1]))[0]) is int

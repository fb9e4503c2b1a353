"""A model's own exception becomes ``ModelFailed`` for exactly the requests it breaks."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mloop.errors import InvalidInput, ModelFailed, Unavailable
from mloop.flavors import Predictions
from mloop.serving._runtime import Job, run_batch


class Raising:
    """Doubles x; raises ``error`` when any row has x == 13."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error or KeyError("no score for 13")
        self.calls: list[int] = []

    def predict(self, frame: pd.DataFrame) -> Predictions:
        self.calls.append(len(frame))
        if (frame["x"] == 13).any():
            raise self.error
        return Predictions("regression", values=frame["x"].to_numpy(dtype=float) * 2)


def _predictor(model: Raising, ref: str = "churn:4") -> Any:
    name, version = ref.split(":")
    return SimpleNamespace(
        model=model,
        schema=None,
        version=SimpleNamespace(ref=ref, name=name, version=int(version)),
    )


def _job(*xs: float) -> Job:
    return Job("records", [{"x": x} for x in xs], len(xs))


def test_the_error_names_the_version_and_the_exception_and_keeps_the_cause() -> None:
    (result,) = run_batch(_predictor(Raising()), [_job(13)], matrix=False)
    assert isinstance(result, ModelFailed)
    assert result.type == "operator_fixable" and result.status_code == 500
    assert "churn:4" in str(result) and "KeyError" in str(result) and "no score" in str(result)
    assert "whoever deployed it must look at it" in str(result)
    assert isinstance(result.__cause__, KeyError)
    assert result.to_dict()["error"]["exception"] == "KeyError"


def test_one_failing_request_fails_only_itself_in_a_batch() -> None:
    model = Raising()
    results = run_batch(_predictor(model), [_job(1, 2), _job(13), _job(3)], matrix=False)
    assert [type(r).__name__ for r in results] == ["Predictions", "ModelFailed", "Predictions"]
    assert results[0].values.tolist() == [2.0, 4.0]  # type: ignore[union-attr]
    assert results[2].values.tolist() == [6.0]  # type: ignore[union-attr]
    assert model.calls == [4, 2, 1, 1]  # the batch, then each request on its own


def test_mloop_errors_from_a_flavor_keep_their_own_type() -> None:
    for error in (InvalidInput("bad row"), Unavailable("warming")):
        (result,) = run_batch(_predictor(Raising(error)), [_job(13)], matrix=False)
        assert result is error


def test_the_traceback_is_logged_once_then_one_line_per_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    predictor = _predictor(Raising(), ref="logged:1")
    with caplog.at_level(logging.INFO, logger="mloop.serving"):
        for _ in range(3):
            run_batch(predictor, [_job(13)], matrix=False)
    mine = [r for r in caplog.records if "logged:1" in r.getMessage()]
    assert [r.exc_info is not None for r in mine] == [True, False, False]


def test_a_matrix_model_is_wrapped_too() -> None:
    class Matrix:
        def predict_array(self, x: np.ndarray) -> Predictions:
            raise FloatingPointError("overflow")

    predictor = _predictor(Raising())
    predictor.model = Matrix()
    (result,) = run_batch(predictor, [Job("tensor", np.ones((1, 2)), 1)], matrix=True)
    assert isinstance(result, ModelFailed) and "FloatingPointError" in str(result)

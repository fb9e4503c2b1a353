"""A model that raises is the model's failure: its own error type, counted for its version.

Such an answer is ``operator_fixable`` (whoever deployed the model must look), never
"a bug in mloop"; it counts as a failed request of that version for the rollout
guards; in a micro-batch only the requests whose rows break the model fail; and a
rollout's candidate is never answered from the prediction cache.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from mloop.config import load_settings
from mloop.errors import ModelFailed
from mloop.registry import Registry
from mloop.serving import RouteDecision, ServingStats, create_app
from mloop.serving._runtime import Job, run_batch


class Picky:
    """Answers 'yes'/'no' by the sign of x, and raises on x == 13."""

    classes_ = np.array(["no", "yes"])
    calls = 0

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        type(self).calls += 1
        if (X["x"] == 13).any():
            raise ValueError("cannot score 13")
        return np.where(X["x"] > 0, "yes", "no")


class CandidateArm:
    """Every request goes to version 1 as a rollout's candidate."""

    def route(self, model: str, key: str | None) -> RouteDecision:
        return RouteDecision(version=1, arm="candidate")

    def versions_in_use(self) -> dict[str, set[int]]:
        return {"picky": {1}}


def _registry(tmp_path: Path) -> Registry:
    registry = Registry(load_settings(env={}, config_file=None, home=tmp_path / "home"))
    x = pd.DataFrame({"x": np.arange(-5.0, 6.0)})
    registry.register(Picky(), "picky", training_data=x, alias="production")
    return registry


def test_a_raising_model_answers_model_failed_and_counts_for_its_version(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    stats = ServingStats()
    app = create_app(registry.settings, registry=registry, auth=False, stats=stats)
    with TestClient(app) as client:
        bad = client.post("/models/picky/predict", json={"records": [{"x": 13}]})
        good = client.post("/models/picky/predict", json={"records": [{"x": 2}]})
        metrics = client.get("/metrics").text
    assert good.status_code == 200
    assert bad.status_code == 500
    error = bad.json()["error"]
    assert error["type"] == "operator_fixable" and error["code"] == "model_failed"
    assert "picky:1" in error["message"] and "ValueError: cannot score 13" in error["message"]
    assert "bug" not in error["message"]
    assert error["request_id"] and error["request_id"] == bad.headers["x-request-id"]
    snap = stats.snapshot("picky")[1]
    assert snap["requests"] == 2 and snap["errors"] == 1
    assert 'mloop_errors_total{code="model_failed",type="operator_fixable"} 1.0' in metrics
    assert 'mloop_requests_total{api="records",model="picky",status="500",version="1"} 1.0' in (
        metrics
    )


def test_in_a_batch_only_the_request_that_breaks_the_model_fails(tmp_path: Path) -> None:
    predictor = _registry(tmp_path).load("picky")
    jobs = [
        Job("records", [{"x": 1.0}], 1),
        Job("records", [{"x": 13.0}, {"x": 2.0}], 2),
        Job("records", [{"x": -3.0}], 1),
    ]
    first, second, third = run_batch(predictor, jobs)
    assert isinstance(second, ModelFailed)
    assert isinstance(second.__cause__, ValueError)
    assert not isinstance(first, BaseException) and first.labels.tolist() == ["yes"]  # type: ignore[union-attr]
    assert not isinstance(third, BaseException) and third.labels.tolist() == ["no"]  # type: ignore[union-attr]


def test_a_candidate_is_never_answered_from_the_cache(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    app = create_app(registry.settings, registry=registry, auth=False, router=CandidateArm())
    Picky.calls = 0
    with TestClient(app) as client:
        before = Picky.calls  # warm-up calls
        for _ in range(3):
            r = client.post("/models/picky/predict", json={"records": [{"x": 4}]})
            assert r.status_code == 200 and r.headers["x-mloop-arm"] == "candidate"
    assert Picky.calls - before == 3


def test_the_stable_arm_still_uses_the_cache(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    app = create_app(registry.settings, registry=registry, auth=False)
    Picky.calls = 0
    with TestClient(app) as client:
        before = Picky.calls
        for _ in range(3):
            assert client.post("/models/picky/predict", json={"records": [{"x": 4}]}).is_success
    assert Picky.calls - before == 1


class Steady:
    """Never raises: answers 'yes'/'no' by the sign of x."""

    classes_ = np.array(["no", "yes"])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.where(X["x"] > 0, "yes", "no")


class ShadowOfTwo:
    """Version 1 answers; version 2 gets a shadow copy of every request."""

    def route(self, model: str, key: str | None) -> RouteDecision:
        return RouteDecision(version=1, shadow=(2,))

    def versions_in_use(self) -> dict[str, set[int]]:
        return {"picky": {1, 2}}


def test_a_shadow_counts_its_successes_and_its_models_failures(tmp_path: Path) -> None:
    registry = Registry(load_settings(env={}, config_file=None, home=tmp_path / "home"))
    x = pd.DataFrame({"x": np.arange(-5.0, 6.0)})
    registry.register(Steady(), "picky", training_data=x, alias="production")
    registry.register(Picky(), "picky", training_data=x)
    stats = ServingStats()
    app = create_app(
        registry.settings, registry=registry, auth=False, stats=stats, router=ShadowOfTwo()
    )
    with TestClient(app) as client:
        for x_value in (13, 1, 2, 13.0):
            r = client.post("/models/picky/predict", json={"records": [{"x": x_value}]})
            assert r.status_code == 200  # a failing shadow never touches the answer
        deadline = time.monotonic() + 10
        while stats.snapshot("picky").get(2, {}).get("requests", 0) < 4:
            assert time.monotonic() < deadline, stats.snapshot("picky")
            time.sleep(0.01)
    shadow = stats.snapshot("picky")[2]
    assert (shadow["requests"], shadow["errors"], shadow["shadow_compared"]) == (4, 2, 2)

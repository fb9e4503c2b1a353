"""Monitor.status: drift per window against the version's profile, realized and estimated accuracy."""

from __future__ import annotations

import math

import pytest

from mloop._clock import ManualClock
from mloop.journal._log import PredictionLog
from mloop.monitor._service import Monitor

from .conftest import START, World, make_data


@pytest.fixture(scope="module")
def logged(world: World) -> dict[str, list[str]]:
    """Hour 1: data like the reference. Hour 2: age shifted by +15 years."""
    log = PredictionLog(world.settings)
    calm, _ = make_data(600, seed=1)
    shifted, _ = make_data(600, seed=2, shift=15.0)
    ids = {
        "calm": world.log(log, calm, START + 60, batch=3),
        "shifted": world.log(log, shifted, START + 3600 + 60, batch=3),
    }
    log.close()
    return ids


def monitor(world: World, now: float = START + 7200) -> Monitor:
    return Monitor(world.settings, world.registry, clock=ManualClock(now))


def test_status_flags_drift_only_in_the_shifted_window(world: World, logged: object) -> None:
    status = monitor(world).status("churn", since=START, window="1h")
    calm, shifted = status.windows
    assert (calm.rows, shifted.rows) == (600, 600)
    assert calm.drift is not None and shifted.drift is not None
    assert calm.drift.drifted_columns == []
    assert shifted.drift.drifted_columns == ["age"]
    assert shifted.metric("feature_drift:age") > calm.metric("feature_drift:age")  # type: ignore[operator]
    assert shifted.prediction_drift is not None and shifted.prediction_drift.columns[0].drifted
    assert calm.missing_rate == 0.0
    assert calm.out_of_contract_rate is not None and calm.out_of_contract_rate < 0.02
    assert status.to_dict()["windows"][1]["drifted_features"] == ["age"]


def test_feedback_gives_realized_accuracy_close_to_the_estimate(
    world: World, logged: dict[str, list[str]]
) -> None:
    mon = monitor(world)
    _frame, y = make_data(600, seed=1)
    labels = [
        {"request_id": rid, "row": r, "label": str(y[i * 3 + r])}
        for i, rid in enumerate(logged["calm"])
        for r in range(3)
    ]
    mon.compact()
    result = mon.feedback([*labels, {"request_id": "unknown", "label": "yes"}])
    assert result.to_dict() == {"accepted": 601, "matched": 600, "unmatched": 1}
    calm = mon.status("churn", since=START, until=START + 3600, window="1h").windows[0]
    mon.close()
    assert calm.labelled == 600
    accuracy, estimated = calm.metric("accuracy"), calm.metric("estimated_accuracy")
    assert accuracy is not None and estimated is not None
    assert 0.7 < accuracy < 1.0
    assert math.isclose(accuracy, estimated, abs_tol=0.06)


def test_observe_window_is_per_version(world: World, logged: object) -> None:
    window = monitor(world).observe_window("churn", 1, since=START + 3600, until=START + 7200)
    assert window.rows == 600 and window.versions == {1: 600}
    assert window.metric("prediction_drift") is not None
    assert window.metric("estimated_accuracy") is not None
    both = monitor(world).observe_versions("churn", [1], since=START + 3600, until=START + 7200)
    guard = both[1].guard_metrics()
    assert guard["rows"] == 600 and guard["prediction_drift"] == window.metric("prediction_drift")
    assert set(guard) == {"rows", "prediction_drift", "labels", "accuracy", "estimated_accuracy"}


def test_report_is_one_self_contained_page(world: World, logged: object) -> None:
    status, html = monitor(world).report("churn", since=START, window="1h")
    assert len(status.windows) == 2
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "age" in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")

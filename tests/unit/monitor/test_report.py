"""The drift report as users read it: a table, JSON, and a self-contained HTML page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mloop.contracts import build_profile, infer_schema
from mloop.errors import InvalidInput
from mloop.monitor import DriftReport, WindowCounts, as_reference, drift
from mloop.types import Predictions


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, n) + shift * 10,
            "income": rng.lognormal(10, 1, n),
            "city": np.array(["Oslo", "Lima", "Pune"])[rng.integers(0, 3, n)],
        }
    )


@pytest.fixture(scope="module")
def report() -> DriftReport:
    return drift(_frame(3_000, 0), _frame(3_000, 1, shift=0.5))


def test_the_frame_has_one_row_per_column_with_effect_threshold_and_verdict(
    report: DriftReport,
) -> None:
    table = report.to_frame()
    assert list(table.index) == ["age", "income", "city"]
    assert {"method", "effect", "threshold", "p_value", "drifted", "psi", "js_distance"} <= set(
        table.columns
    )
    assert table.loc["age", "drifted"] and not table.loc["income", "drifted"]
    assert table.loc["age", "method"] == "ks" and table.loc["city", "method"] == "psi"
    assert report.dataset_drift and report.drifted_columns == ["age"]


def test_the_dict_is_json_ready(report: DriftReport) -> None:
    data = json.loads(json.dumps(report.to_dict()))
    assert data["dataset_drift"] is True
    assert data["columns"][0]["column"] == "age"


def test_the_html_is_self_contained_with_a_plot_per_column(
    report: DriftReport, tmp_path: Path
) -> None:
    path = report.save_html(tmp_path / "drift.html")
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 3
    for fetched in ("<script", "<link", "src=", "@import", "url("):
        assert fetched not in page


def test_a_profile_gives_the_same_verdicts_as_the_raw_reference() -> None:
    reference, current = _frame(3_000, 2), _frame(2_000, 3, shift=0.3)
    from_rows = drift(reference, current)
    from_profile = drift(build_profile(reference, infer_schema(reference)), current)
    assert from_profile.drifted_columns == from_rows.drifted_columns == ["age"]


def test_prediction_drift_is_reported_when_predictions_are_given() -> None:
    rng = np.random.default_rng(4)
    reference = _frame(2_000, 4)

    def preds(n: int, p_yes: float) -> Predictions:
        labels = np.where(rng.random(n) < p_yes, "yes", "no")
        top = rng.uniform(0.5, 1.0, n)
        proba = np.column_stack([top, 1 - top])
        return Predictions(
            task="classification", labels=labels, probabilities=proba, classes=("no", "yes")
        )

    report = drift(
        reference,
        _frame(2_000, 5),
        predictions=preds(2_000, 0.6),
        reference_predictions=preds(2_000, 0.3),
    )
    assert report["prediction"].role == "prediction"
    assert report["prediction"].drifted
    assert not report["score"].drifted


def test_counts_can_stand_in_for_the_current_rows() -> None:
    reference, current = _frame(2_000, 6), _frame(2_000, 7)
    window = WindowCounts(as_reference(reference)).update(current)
    assert drift(reference, window).to_frame()["effect"].tolist() == pytest.approx(
        drift(reference, current).to_frame()["effect"].tolist()
    )


def test_an_unknown_method_is_refused_with_the_choices() -> None:
    with pytest.raises(InvalidInput, match="psi"):
        drift(_frame(100, 9), _frame(100, 10), method="magic")


def test_prediction_drift_against_a_profile_uses_its_prediction_and_score_bins() -> None:
    rng = np.random.default_rng(11)

    def preds(n: int, p_yes: float, sharp: float) -> Predictions:
        labels = np.where(rng.random(n) < p_yes, "yes", "no")
        top = rng.beta(sharp, 1.0, n) * 0.5 + 0.5
        proba = np.column_stack([top, 1 - top])
        return Predictions(
            task="classification", labels=labels, probabilities=proba, classes=("no", "yes")
        )

    reference = _frame(3_000, 12)
    profile = build_profile(reference, infer_schema(reference), predictions=preds(3_000, 0.3, 2.0))
    report = drift(profile, _frame(3_000, 13), predictions=preds(3_000, 0.3, 6.0))
    assert {c.column for c in report.columns} >= {"prediction", "score"}
    assert report["score"].drifted and not report["prediction"].drifted
    assert report.drifted_columns == ["score"]

"""Data validation stops poisoned data: flipped labels, injected rows, duplicates, label shift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mloop.contracts import build_profile, infer_schema
from mloop.pipelines import ValidationConfig, as_model, validate_data

FEATURES = ["x1", "x2", "color"]


def make(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    label = np.where(2 * x1 + x2 + rng.normal(scale=0.3, size=n) > 0, "yes", "no")
    color = rng.choice(["red", "blue"], size=n)
    return pd.DataFrame({"x1": x1, "x2": x2, "color": color, "label": label})


class Champion:
    """A fitted classifier with its contract and calibrated reference profile."""

    def __init__(self) -> None:
        train, ref = make(2000, 0), make(1000, 1)
        self.model = LogisticRegression().fit(train[["x1", "x2"]], train["label"])
        self.view = as_model(_Numeric(self.model))
        self.schema = infer_schema(train[FEATURES])
        preds = self.view.predict(ref[FEATURES])
        self.profile = build_profile(
            ref[FEATURES], self.schema, predictions=preds, target=ref["label"].to_numpy()
        )

    def check(self, frame: pd.DataFrame, config: ValidationConfig | None = None):  # type: ignore[no-untyped-def]
        return validate_data(
            frame,
            features=FEATURES,
            target="label",
            config=config,
            schema=self.schema,
            profile=self.profile,
            champion=self.view.predict(self.schema.coerce(frame[FEATURES])[0]),
        )


class _Numeric:
    """Uses only the numeric columns (the champion ignores color)."""

    def __init__(self, model: LogisticRegression) -> None:
        self.model = model
        self.classes_ = model.classes_

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model.predict(frame[["x1", "x2"]].fillna(0.0))  # type: ignore[no-any-return]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(frame[["x1", "x2"]].fillna(0.0))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def champion() -> Champion:
    return Champion()


def by_name(report, name):  # type: ignore[no-untyped-def]
    return next(c for c in report.checks if c.name == name)


def test_fresh_honest_data_passes_every_check(champion: Champion) -> None:
    report = champion.check(make(1500, 2))
    assert report.passed, report.summary()
    assert {c.name for c in report.checks} >= {
        "rows", "contract", "duplicates", "label_shift", "new_labels", "outliers", "support", "label_flips",
    }  # fmt: skip


def test_flipped_labels_are_caught_with_a_readable_reason(champion: Champion) -> None:
    fresh = make(1500, 3)
    rng = np.random.default_rng(0)
    flip = rng.random(len(fresh)) < 0.25
    fresh.loc[flip, "label"] = np.where(fresh.loc[flip, "label"] == "yes", "no", "yes")
    report = champion.check(fresh)
    check = by_name(report, "label_flips")
    assert not report.passed and not check.passed
    assert check.value is not None and check.threshold is not None and check.value > check.threshold
    assert "labels look flipped" in check.message
    assert "label_flips" in report.summary()


def test_a_few_honest_mistakes_do_not_look_like_poison(champion: Champion) -> None:
    fresh = make(1500, 4)
    fresh.loc[:5, "label"] = np.where(fresh.loc[:5, "label"] == "yes", "no", "yes")
    assert by_name(champion.check(fresh), "label_flips").passed


def test_injected_rows_outside_the_reference_support_fail(champion: Champion) -> None:
    fresh = make(1000, 5)
    injected = make(60, 6).assign(x1=40.0)
    report = champion.check(pd.concat([fresh, injected], ignore_index=True))
    assert not by_name(report, "support").passed
    assert not by_name(report, "outliers").passed
    assert "x1" in by_name(report, "support").message


def test_duplicated_rows_fail(champion: Champion) -> None:
    fresh = make(500, 7)
    copies = pd.concat([fresh, fresh.iloc[:100]] * 1, ignore_index=True)
    assert not by_name(champion.check(copies), "duplicates").passed


def test_label_distribution_shift_fails(champion: Champion) -> None:
    fresh = make(1000, 8).assign(label="yes")
    report = champion.check(fresh)
    assert not by_name(report, "label_shift").passed


def test_contract_breaks_fail(champion: Champion) -> None:
    fresh = make(200, 9)
    fresh["x1"] = fresh["x1"].astype(object)
    fresh.loc[:50, "x1"] = "not a number"
    report = champion.check(fresh, ValidationConfig(max_contract_violation_rate=0.05))
    assert not by_name(report, "contract").passed


def test_without_a_champion_only_self_checks_run() -> None:
    report = validate_data(make(100, 10), features=FEATURES, target="label")
    assert report.passed
    assert by_name(report, "label_flips").message.startswith("skipped")


def test_report_round_trips(champion: Champion) -> None:
    from mloop.pipelines import Report

    report = champion.check(make(300, 11))
    again = Report.from_dict(report.to_dict())
    assert again.passed == report.passed and len(again.checks) == len(report.checks)

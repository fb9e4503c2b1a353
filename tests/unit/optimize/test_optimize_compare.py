"""Agreement of two models' predictions and the verdict against a tolerance (pure)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mloop.contracts import Column, Schema, build_profile
from mloop.flavors import Predictions
from mloop.optimize import (
    Tolerance,
    compare_predictions,
    judge,
    rows_from_profile,
    with_missing_probes,
)


def classified(labels: list[str], p_yes: list[float]) -> Predictions:
    yes = np.asarray(p_yes)
    return Predictions(
        task="classification",
        labels=np.asarray(labels, dtype=object),
        probabilities=np.column_stack([1 - yes, yes]),
        classes=("no", "yes"),
    )


def test_identical_answers_pass() -> None:
    p = classified(["no", "yes", "yes"], [0.2, 0.9, 0.7])
    agreement = compare_predictions(p, p, np.array([False, True, False]))
    assert agreement.label_agreement == 1.0 and agreement.max_probability_diff == 0.0
    assert agreement.missing_rows == 1 and agreement.missing_label_agreement == 1.0
    assert judge(agreement, Tolerance()) == []


def test_a_flip_on_rows_with_gaps_is_refused_even_when_overall_agreement_passes() -> None:
    n = 2000
    labels = ["no"] * n
    original = classified(labels, [0.1] * n)
    changed = labels.copy()
    changed[0] = "yes"  # one row of 2,000 differs: 99.95% overall, above 99.9%
    candidate = classified(changed, [0.9] + [0.1] * (n - 1))
    missing = np.zeros(n, dtype=bool)
    missing[:10] = True  # ... but it is one of the ten rows with a missing value
    agreement = compare_predictions(original, candidate, missing)
    assert agreement.label_agreement == 0.9995
    assert agreement.missing_label_agreement == 0.9
    problems = judge(agreement, Tolerance(max_probability_diff=1.0))
    assert problems == [
        "labels agree on 90.00% of the 10 rows with missing values, below the 99.90% required"
    ]
    assert agreement.worst_rows[0] == 0


def test_probability_columns_are_matched_by_class_not_position() -> None:
    original = classified(["no", "yes"], [0.3, 0.8])
    assert original.probabilities is not None
    swapped = Predictions(
        task="classification",
        labels=np.asarray(["no", "yes"], dtype=object),
        probabilities=original.probabilities[:, ::-1],
        classes=("yes", "no"),
    )
    agreement = compare_predictions(original, swapped, np.zeros(2, dtype=bool))
    assert agreement.max_probability_diff == 0.0


def test_regression_difference_is_judged_against_the_spread() -> None:
    original = Predictions(task="regression", values=np.array([0.0, 100.0, 200.0]))
    near = Predictions(task="regression", values=np.array([0.01, 100.0, 200.0]))
    far = Predictions(task="regression", values=np.array([0.0, 110.0, np.nan]))
    gaps = np.array([False, False, True])
    assert judge(compare_predictions(original, near, gaps), Tolerance()) == []
    problems = judge(compare_predictions(original, far, gaps), Tolerance())
    assert len(problems) == 2 and "rows with missing values" in problems[1]


def test_rows_from_profile_follow_the_contract_and_missing_rates() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x": np.where(rng.random(1000) < 0.2, np.nan, rng.normal(5, 1, 1000)),
            "n": rng.integers(0, 3, 1000),
            "kind": rng.choice(["a", "b"], 1000).astype(object),
        }
    )
    schema = Schema(
        (
            Column("x", "float", nullable=True, min=0.0, max=10.0),
            Column("n", "integer", min=0, max=2),
            Column("kind", "string", categories=("a", "b")),
        )
    )
    rows = rows_from_profile(schema, build_profile(frame, schema), 2000)
    assert [v for v in schema.validate(rows) if v.severity == "reject"] == []
    assert 0.15 < rows["x"].isna().mean() < 0.25
    assert set(rows["n"]) == {0, 1, 2} and set(rows["kind"]) == {"a", "b"}
    probed = with_missing_probes(rows, schema, per_column=50)
    assert len(probed) == 2050  # only 'x' may be missing
    assert probed["x"].iloc[2000:].isna().all()


def test_a_different_label_on_an_exact_tie_counts_as_agreeing() -> None:
    original = classified(["no", "yes"], [0.5, 0.9])  # row 0: 0.5 / 0.5, "no" by order
    candidate = classified(["yes", "yes"], [0.5, 0.9])
    agreement = compare_predictions(original, candidate, np.zeros(2, dtype=bool))
    assert agreement.label_agreement == 1.0 and agreement.tied_rows == 1
    near = classified(["no", "yes"], [0.4999, 0.9])  # not a tie: a real flip
    assert compare_predictions(near, candidate, np.zeros(2, dtype=bool)).label_agreement == 0.5


def test_speed_is_read_from_the_injected_clock() -> None:
    from mloop.optimize import measure_speed

    class Constant:
        task = "regression"
        classes = ()

        def predict(self, frame: pd.DataFrame) -> Predictions:
            return Predictions(task="regression", values=np.zeros(len(frame)))

    ticks = iter(np.arange(0, 10_000) / 1024)  # each reading 1/1024 s after the last (exact)
    schema = Schema((Column("x", "float"), Column("k", "string")))
    rows = pd.DataFrame({"x": [1.0, 2.0, 3.0], "k": ["a", "b", "c"]})
    speed = measure_speed(Constant(), schema, rows, calls=8, clock=lambda: float(next(ticks)))
    assert speed.one_row_ms == speed.batch_ms == 1000 / 1024
    assert speed.batch_rows_per_s == 64 * 1024

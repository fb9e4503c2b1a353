"""CBPE estimates per analysis chunk, one function per tool (run in the tool's venv)."""

from __future__ import annotations

from typing import Any

import numpy as np

METRICS = ("accuracy", "roc_auc", "f1")


def _load(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def _chunks(d: dict[str, np.ndarray]) -> list[slice]:
    size = int(d["chunk"])
    return [slice(i, i + size) for i in range(0, d["ana_proba"].size, size)]


def mloop(path: str) -> dict[str, Any]:
    """Calibration fitted on the labelled reference, then ``estimate_performance`` per chunk."""
    from mloop.contracts import Calibration
    from mloop.monitor import classification_metrics, estimate_performance

    d = _load(path)
    two = lambda p: np.column_stack([1 - p, p])  # noqa: E731
    calibration = Calibration.fit(two(d["ref_proba"]), d["ref_y"], (0, 1))
    estimated, realized = [], []
    for rows in _chunks(d):
        proba = two(d["ana_proba"][rows])
        est = estimate_performance(proba, [0, 1], calibration=calibration)
        real = classification_metrics(d["ana_y"][rows], proba.argmax(axis=1), proba, [0, 1])
        estimated.append({m: est[m] for m in METRICS})
        realized.append({m: real[m] for m in METRICS})
    return {"tool": "mloop", "estimated": estimated, "realized": realized}


def nannyml(path: str) -> dict[str, Any]:
    """NannyML's CBPE fitted on the same reference with its defaults."""
    import warnings

    import nannyml as nml
    import pandas as pd

    d = _load(path)

    def frame(p: np.ndarray, y: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"proba": p, "pred": (p >= 0.5).astype(int), "y": y})

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = nml.CBPE(
            y_pred_proba="proba",
            y_pred="pred",
            y_true="y",
            problem_type="classification_binary",
            metrics=list(METRICS),
            chunk_size=int(d["chunk"]),
        )
        est.fit(frame(d["ref_proba"], d["ref_y"]))
        out = est.estimate(frame(d["ana_proba"], d["ana_y"])).filter(period="analysis").to_df()
    estimated = [{m: float(out[(m, "value")].iloc[i]) for m in METRICS} for i in range(len(out))]
    return {"tool": "nannyml", "estimated": estimated}


CBPE_TOOLS = {"mloop": mloop, "nannyml": nannyml}

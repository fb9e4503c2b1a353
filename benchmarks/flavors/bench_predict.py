"""Per-call cost of a loaded mloop Model versus calling the library directly.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/flavors/bench_predict.py
For each flavor and batch size it prints microseconds per call for the raw library
(predict_proba + argmax to labels, what a server needs), mloop ``predict(frame)`` and, where
offered, mloop ``predict_array(array)``, and the ratio mloop / raw.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd

from mloop.flavors import ArrayModel, Model, flavor_for


def per_call_us(fn: Callable[[], Any], budget_s: float = 0.4) -> float:
    fn()
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < budget_s:
        fn()
        calls += 1
    return elapsed / max(calls, 1) * 1e6


def load(model: object, root: Path, name: str) -> Model:
    flavor = flavor_for(model)
    folder = root / name
    folder.mkdir()
    return flavor.load(folder, flavor.save(model, folder))


def main() -> None:
    import lightgbm as lgb
    import xgboost as xgb
    from skl2onnx import to_onnx
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    data = rng.normal(size=(5000, 20))
    labels = np.where(data[:, 0] + data[:, 1] > 0, "yes", "no")
    frame = pd.DataFrame(data, columns=[f"f{i}" for i in range(20)])
    codes = (labels == "yes").astype(int)
    hgb = HistGradientBoostingClassifier(max_iter=50).fit(data, labels)
    logreg = LogisticRegression().fit(data.astype(np.float32), labels)
    cases: list[tuple[str, object, Callable[[np.ndarray], Any]]] = [
        ("sklearn HGB (array-fitted)", hgb, lambda x: hgb.classes_[hgb.predict_proba(x).argmax(1)]),
        (
            "sklearn HGB (frame-fitted)",
            HistGradientBoostingClassifier(max_iter=50).fit(frame, labels),
            None,
        ),  # type: ignore[list-item]
        (
            "xgboost XGBClassifier",
            xgb.XGBClassifier(n_estimators=50, n_jobs=1).fit(data, codes),
            None,
        ),  # type: ignore[list-item]
        (
            "lightgbm LGBMClassifier",
            lgb.LGBMClassifier(n_estimators=50, verbose=-1, n_jobs=1).fit(data, labels),
            None,
        ),  # type: ignore[list-item]
        (
            "onnx LogisticRegression",
            to_onnx(logreg, data[:1].astype(np.float32), options={"zipmap": False}),
            None,
        ),  # type: ignore[list-item]
        ("onnx LogisticRegression (ZipMap)", to_onnx(logreg, data[:1].astype(np.float32)), None),  # type: ignore[list-item]
    ]
    print(
        f"{'model':36} {'rows':>5} {'raw us':>9} {'predict us':>11} {'ratio':>6} {'array us':>9} {'ratio':>6}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for index, (name, obj, _) in enumerate(cases):
            model = load(obj, Path(tmp), f"m{index}")
            raw = _raw(name, obj)
            for rows in (1, 64, 1024):
                x, f = data[:rows], frame.iloc[:rows]
                raw_us = per_call_us(partial(raw, x, f))
                frame_us = per_call_us(partial(model.predict, f))
                line = f"{name:36} {rows:>5} {raw_us:>9.1f} {frame_us:>11.1f} {frame_us / raw_us:>6.2f}"
                if isinstance(model, ArrayModel):
                    array_us = per_call_us(partial(model.predict_array, x))
                    line += f" {array_us:>9.1f} {array_us / raw_us:>6.2f}"
                print(line, flush=True)


def _raw(name: str, obj: Any) -> Callable[[np.ndarray, pd.DataFrame], Any]:
    if name.startswith("onnx"):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(
            obj.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        return lambda x, f: session.run(None, {"X": x.astype(np.float32)})
    fitted_on_frame = hasattr(obj, "feature_names_in_") and "frame" in name

    def run(x: np.ndarray, f: pd.DataFrame) -> Any:
        data = f if fitted_on_frame else x
        return np.asarray(obj.classes_)[obj.predict_proba(data).argmax(1)]

    return run


if __name__ == "__main__":
    main()

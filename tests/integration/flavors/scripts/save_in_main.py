"""Run as a script: defines models in ``__main__`` and saves them, for another process to load.

Usage: python save_in_main.py OUT_DIR HELPERS_DIR
Writes OUT_DIR/pyfunc_main (pyfunc flavor folder + meta.json + expected.json) and three
MLflow model directories made by mlflow itself: mlflow_skops, mlflow_pickle, mlflow_pyfunc.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

out, helpers = Path(sys.argv[1]), sys.argv[2]
sys.path.insert(0, helpers)

from flavor_models import numeric_frame  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

from mloop.flavors import get_flavor  # noqa: E402


class Threshold:
    """A model class that exists only in this script's __main__."""

    classes_ = np.array(["no", "yes"])

    def __init__(self, cut: float) -> None:
        self.cut = cut

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.where(frame["f0"].to_numpy() > self.cut, "yes", "no")

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        p = 1 / (1 + np.exp(-(frame["f0"].to_numpy() - self.cut)))
        return np.column_stack([1 - p, p])


frame, labels = numeric_frame()
model = Threshold(0.25)
folder = out / "pyfunc_main"
folder.mkdir(parents=True)
meta = dict(get_flavor("pyfunc").save(model, folder))
(out / "pyfunc_main.json").write_text(
    json.dumps(
        {
            "meta": meta,
            "labels": model.predict(frame).tolist(),
            "probabilities": model.predict_proba(frame).tolist(),
        }
    )
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # mlflow warns about type hints and pickling on import
    import mlflow.pyfunc
    import mlflow.sklearn

    class Scaler(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        """An MLflow PythonModel defined in __main__ that reads an artifact."""

        def load_context(self, context: Any) -> None:
            self.factor = float(Path(context.artifacts["factor"]).read_text())

        def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
            return model_input["f0"].to_numpy() * self.factor

    factor = out / "factor.txt"
    factor.write_text("3.5")
    clf = LogisticRegression(max_iter=300).fit(frame, labels)
    mlflow.sklearn.save_model(clf, str(out / "mlflow_skops"), pip_requirements=[])
    mlflow.sklearn.save_model(
        clf, str(out / "mlflow_pickle"), serialization_format="cloudpickle", pip_requirements=[]
    )
    mlflow.pyfunc.save_model(
        str(out / "mlflow_pyfunc"),
        python_model=Scaler(),
        artifacts={"factor": str(factor)},
        pip_requirements=[],
    )
(out / "mlflow_expected.json").write_text(
    json.dumps(
        {
            "labels": clf.predict(frame).tolist(),
            "probabilities": clf.predict_proba(frame).tolist(),
            "values": (frame["f0"].to_numpy() * 3.5).tolist(),
        }
    )
)
print("saved")

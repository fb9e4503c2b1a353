"""Models saved here load in a fresh Python process (no shared state, no mlflow installed).

Two subprocesses in all: one script defines models in its own ``__main__`` and makes MLflow
directories with mlflow itself; one fresh process loads every saved folder and checks its
predictions against the original models'.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from flavor_models import mixed_frame, mixed_pipeline, numeric_frame

from mloop.errors import InvalidInput
from mloop.flavors import MlflowModelDir, flavor_for, get_flavor, import_mlflow

HERE = Path(__file__).parent
SCRIPTS = HERE / "scripts"


def _run(script: str, *args: Path | str) -> str:
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / script), *map(str, args), str(HERE)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _entry(name: str, model: object, folder: Path, data: str, **expected: Any) -> dict[str, Any]:
    flavor = flavor_for(model)
    folder.mkdir(parents=True)
    meta = dict(flavor.save(model, folder))
    json.dumps(meta)  # metadata must be JSON-ready for the registry
    plain = {k: np.asarray(v).tolist() for k, v in expected.items()}
    entry = {"name": name, "flavor": flavor.name, "folder": str(folder), "meta": meta}
    return entry | {"data": data} | plain


@pytest.mark.slow
def test_saved_models_predict_the_same_in_a_fresh_process(tmp_path: Path) -> None:
    xgb = pytest.importorskip("xgboost")
    lgb = pytest.importorskip("lightgbm")
    skl2onnx = pytest.importorskip("skl2onnx")
    assert _run("save_in_main.py", tmp_path).strip().endswith("saved")

    mixed, yes_no = mixed_frame()
    numeric, levels = numeric_frame()
    entries = []

    pipeline = mixed_pipeline(mixed, yes_no)
    entries.append(
        _entry(
            "sklearn-pipeline",
            pipeline,
            tmp_path / "sk",
            "mixed",
            labels=pipeline.predict(mixed),
            probabilities=pipeline.predict_proba(mixed),
        )
    )
    codes = pd.Series(levels).map({"low": 0, "mid": 1, "high": 2}).to_numpy()
    booster = xgb.XGBClassifier(n_estimators=6, max_depth=3, n_jobs=1).fit(numeric, codes)
    entries.append(
        _entry(
            "xgboost",
            booster,
            tmp_path / "xgb",
            "numeric",
            labels=booster.predict(numeric),
            probabilities=booster.predict_proba(numeric),
        )
    )
    gbm = lgb.LGBMClassifier(n_estimators=6, verbose=-1, n_jobs=1).fit(numeric, levels)
    entries.append(
        _entry(
            "lightgbm",
            gbm,
            tmp_path / "lgb",
            "numeric",
            labels=gbm.predict(numeric),
            probabilities=gbm.predict_proba(numeric),
        )
    )
    from sklearn.linear_model import LogisticRegression

    data = numeric.to_numpy(np.float32)
    linear = LogisticRegression(max_iter=300).fit(data, levels)
    entries.append(
        _entry(
            "onnx",
            skl2onnx.to_onnx(linear, data[:1]),
            tmp_path / "onnx",
            "numeric",
            labels=linear.predict(data),
            probabilities=linear.predict_proba(data),
        )
    )

    # A class that lived only in the other script's __main__.
    saved = json.loads((tmp_path / "pyfunc_main.json").read_text())
    entries.append(
        {"name": "pyfunc-main", "flavor": "pyfunc", "folder": str(tmp_path / "pyfunc_main")}
        | {"data": "numeric"}
        | saved
    )

    # MLflow directories, made by mlflow itself, imported without it.
    expected = json.loads((tmp_path / "mlflow_expected.json").read_text())
    skops_model, name = import_mlflow(tmp_path / "mlflow_skops")
    assert name == "sklearn"
    with pytest.raises(InvalidInput, match="trust=True"):
        import_mlflow(tmp_path / "mlflow_pickle")
    pickled, name = import_mlflow(tmp_path / "mlflow_pickle", trust=True)
    assert name == "sklearn"
    with pytest.raises(InvalidInput, match="trust=True"):
        import_mlflow(tmp_path / "mlflow_pyfunc")
    pyfunc_dir, name = import_mlflow(tmp_path / "mlflow_pyfunc", trust=True)
    assert name == "mlflow" and isinstance(pyfunc_dir, MlflowModelDir)
    assert pyfunc_dir.task == "regression"
    for label, model in (("mlflow-skops", skops_model), ("mlflow-pickle", pickled)):
        entries.append(
            _entry(
                label,
                model,
                tmp_path / label,
                "numeric",
                labels=expected["labels"],
                probabilities=expected["probabilities"],
            )
        )
    entries.append(
        _entry("mlflow-pyfunc", pyfunc_dir, tmp_path / "mlp", "numeric", values=expected["values"])
    )
    # The copy is self-contained: the original directory can go away.
    assert get_flavor("mlflow").load(tmp_path / "mlp", entries[-1]["meta"]).task == "regression"

    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(entries))
    printed = _run("load_fresh.py", manifest).split()
    assert printed == [w for e in entries for w in ("ok", e["name"])]

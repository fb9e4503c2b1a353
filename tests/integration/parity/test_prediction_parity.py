"""Served answers equal the model's own, row for row, on real data with missing values.

A model is registered with the frame it was trained on; then every way a user can
ask mloop for a prediction (the Python API with a frame or records, the records
API, the WebSocket feed, the Open Inference Protocol, ``mloop predict`` on CSV and
Parquet) must give
exactly what ``model.predict`` / ``predict_proba`` give on that frame. The probe
model (``FrameProbe``) answers with a hash of the frame it is handed, so it fails on
any difference in dtype or missing marker even where a real model happens to agree.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from parity_data import SETS, DataSet, enriched
from parity_models import FrameProbe, sklearn_pipeline

from frame_cells import json_cell
from mloop.config import load_settings
from mloop.flavors import Predictions
from mloop.registry import Registry
from mloop.serving import create_app

DATASETS = {f.__name__: f for f in SETS}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("parity") / "home"


@pytest.fixture(scope="module")
def registry(home: Path) -> Registry:
    return Registry(load_settings(env={}, config_file=None, home=home))


def _data(name: str, with_dtypes: bool) -> DataSet:
    data = DATASETS[name]()
    return enriched(data) if with_dtypes else data


def _register(registry: Registry, data: DataSet, kind: str) -> tuple[str, Any]:
    model: Any = sklearn_pipeline(data) if kind == "sklearn" else FrameProbe()
    name = f"{kind}-{data.name.replace('+', '-').replace('_', '-')}"
    target = data.y if kind == "sklearn" else None
    registry.register(
        model, name, training_data=data.X, target=target, alias="production", trust=True
    )
    return name, model


def _expected(model: Any, X: pd.DataFrame, task: str) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(model, FrameProbe) or task == "regression":
        return np.asarray(model.predict(X)), None
    return np.asarray(model.predict(X)), model.predict_proba(X)


def _assert_same(
    answer: Any, probabilities: Any, labels: np.ndarray, proba: np.ndarray | None
) -> None:
    """Every row's label (or value) and probabilities exactly as the model gave them."""
    mismatched = np.flatnonzero(np.asarray(answer) != labels)
    assert mismatched.size == 0, (
        f"{mismatched.size} of {len(labels)} rows differ: {mismatched[:10]}"
    )
    if proba is not None:
        np.testing.assert_array_equal(np.asarray(probabilities).reshape(proba.shape), proba)


def _assert_equal(got: Predictions, labels: np.ndarray, proba: np.ndarray | None) -> None:
    answer = got.labels if got.labels is not None else got.values
    _assert_same(answer, got.probabilities, labels, proba)


def _records(X: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: json_cell(v) for k, v in row.items()} for row in X.to_dict("records")]


def _v2_inputs(registry: Registry, name: str, X: pd.DataFrame) -> list[dict[str, Any]]:
    schema = registry.get(name).schema
    assert schema is not None
    inputs = []
    for col in schema.columns:
        data = [json_cell(v) for v in X[col.name].tolist()]
        datatype = col.v2_datatype
        if datatype == "INT64" and any(v is None for v in data):
            datatype = "FP64"  # JSON integers have no missing value; null in FP64 is NaN
        inputs.append({"name": col.name, "shape": [len(X)], "datatype": datatype, "data": data})
    return inputs


def _answers(body: list[dict[str, Any]], classes: tuple[Any, ...]) -> tuple[Any, Any]:
    labels = np.array([p.get("label", p.get("value")) for p in body], dtype=object)
    if classes and "probabilities" in body[0]:
        proba = np.array([[p["probabilities"][str(c)] for c in classes] for p in body])
        return labels, proba
    return labels, None


Case = tuple[str, bool, str]
CASES: list[Case] = [
    (name, with_dtypes, kind)
    for name in DATASETS
    for with_dtypes in (False, True)
    for kind in ("sklearn", "probe")
]


@pytest.fixture(scope="module")
def registered(registry: Registry) -> Callable[[Case], tuple[str, Any, DataSet]]:
    done: dict[Case, tuple[str, Any, DataSet]] = {}

    def get(case: Case) -> tuple[str, Any, DataSet]:
        if case not in done:
            data = _data(case[0], case[1])
            name, model = _register(registry, data, case[2])
            done[case] = (name, model, data)
        return done[case]

    return get


@pytest.fixture(scope="module")
def client(home: Path, registered: Any) -> Any:
    for case in CASES:
        registered(case)
    settings = load_settings(env={}, config_file=None, home=home)
    with TestClient(create_app(settings, auth=False)) as c:
        yield c


def _case_id(case: Case) -> str:
    return f"{case[2]}-{case[0]}{'+dtypes' if case[1] else ''}"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_python_api_on_the_training_frame(registry: Registry, registered: Any, case: Case) -> None:
    name, model, data = registered(case)
    labels, proba = _expected(model, data.X, data.task)
    _assert_equal(registry.load(name, trust=True).predict(data.X), labels, proba)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_python_api_on_json_records(registry: Registry, registered: Any, case: Case) -> None:
    name, model, data = registered(case)
    labels, proba = _expected(model, data.X, data.task)
    _assert_equal(registry.load(name, trust=True).predict(_records(data.X)), labels, proba)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_records_api(client: Any, registry: Registry, registered: Any, case: Case) -> None:
    name, model, data = registered(case)
    labels, proba = _expected(model, data.X, data.task)
    r = client.post(f"/models/{name}/predict", json={"records": _records(data.X)})
    assert r.status_code == 200, r.text
    classes = registry.load(name, trust=True).classes
    _assert_same(*_answers(r.json()["predictions"], classes), labels, proba)


@pytest.mark.parametrize("case", [c for c in CASES if c[1]], ids=_case_id)
def test_websocket_feed(client: Any, registry: Registry, registered: Any, case: Case) -> None:
    name, model, data = registered(case)
    labels, proba = _expected(model, data.X, data.task)
    head = data.X.head(40)
    with client.websocket_connect(f"/models/{name}/stream") as ws:
        ws.send_text(json.dumps({"id": "all", "records": _records(head)}))
        body = ws.receive_json()
    assert body["id"] == "all" and "predictions" in body, body
    classes = registry.load(name, trust=True).classes
    _assert_same(
        *_answers(body["predictions"], classes),
        labels[:40],
        None if proba is None else proba[:40],
    )


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_open_inference_protocol(
    client: Any, registry: Registry, registered: Any, case: Case
) -> None:
    name, model, data = registered(case)
    labels, proba = _expected(model, data.X, data.task)
    r = client.post(f"/v2/models/{name}/infer", json={"inputs": _v2_inputs(registry, name, data.X)})
    assert r.status_code == 200, r.text
    outputs = {o["name"]: o for o in r.json()["outputs"]}
    answer = outputs["label"] if "label" in outputs else outputs["value"]
    got = np.array(answer["data"], dtype=object if "label" in outputs else float)
    probabilities = outputs["probabilities"]["data"] if proba is not None else None
    _assert_same(got, probabilities, labels, proba)


# A CSV file carries no dtypes, so the probe (whose answer hashes them) reads Parquet only.
FILE_CASES = [
    (case, fmt)
    for case in CASES
    if case[:2] in (("penguins", True), ("chile", False))
    for fmt in ("csv", "parquet")
    if not (case[2] == "probe" and fmt == "csv")
]


@pytest.mark.parametrize(
    ("case", "fmt"), FILE_CASES, ids=[f"{_case_id(c)}-{f}" for c, f in FILE_CASES]
)
def test_mloop_predict_on_files(
    home: Path, registered: Any, tmp_path: Path, case: Case, fmt: str
) -> None:
    name, model, data = registered(case)
    labels, proba = _expected(model, data.X, data.task)
    source = tmp_path / f"input.{fmt}"
    if fmt == "csv":
        data.X.to_csv(source, index=False)
    else:
        data.X.to_parquet(source, index=False)
    out = tmp_path / "out.parquet"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mloop",
            "predict",
            name,
            "--input",
            str(source),
            "--output",
            str(out),
        ],
        env={"MLOOP_HOME": str(home), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_parquet(out)
    column = "label" if "label" in frame.columns else "prediction"
    probabilities = None
    if proba is not None:
        probabilities = frame[[c for c in frame.columns if c != column]].to_numpy()
    _assert_same(frame[column].to_numpy(), probabilities, labels, proba)

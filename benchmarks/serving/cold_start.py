"""Cold start: process start to the first answered prediction, mloop against a plain FastAPI app.

Both serve the same HistGradientBoostingClassifier (20 numeric features, trained once
in the project venv from generated data): mloop through ``mloop serve`` on a registry
with that one model, the peer as a ~15-line FastAPI app that ``joblib.load``s it at
import (``BASELINE_APP`` of ``bench.py``, in its own venv under
/root/.cache/mloop-bench/fastapi, same scikit-learn version). The clock starts before
the process is spawned and stops at the first 200 to a one-row POST; runs alternate
between the two so machine noise hits both alike.

    .venv/bin/python benchmarks/serving/cold_start.py --runs 7
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import joblib
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from bench import BASELINE_APP, PINNED, PROJECT_PY, _py, free_port, setup_peers

ROW = {f"f{i}": 0.1 * i for i in range(20)}


def _model(folder: Path) -> Path:
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier

    from mloop.config import load_settings
    from mloop.registry import Registry

    X, y = make_classification(n_samples=5000, n_features=20, n_informative=10, random_state=0)
    frame = pd.DataFrame(X, columns=list(ROW))
    model = HistGradientBoostingClassifier(random_state=0).fit(frame.to_numpy(), y)
    path = folder / "model.joblib"
    joblib.dump(model, path)
    registry = Registry(load_settings(env={}, config_file=None, home=folder / "home"))
    served = HistGradientBoostingClassifier(random_state=0).fit(frame, y)
    registry.register(served, "hgb", training_data=frame, target=y, alias="production")
    registry.store.dispose()
    return path


def _first_answer(command: list[str], env: dict[str, str], url: str, body: object) -> float:
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        with httpx.Client(timeout=2.0) as http:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{command} exited with {process.returncode}")
                try:
                    if http.post(url, json=body).status_code == 200:
                        return time.perf_counter() - started
                except httpx.HTTPError:
                    pass
                time.sleep(0.01)
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    setup_peers(["fastapi"])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = _model(folder)
        app = folder / "baseline.py"
        app.write_text(BASELINE_APP)
        base_env = {**os.environ, **PINNED}
        times: dict[str, list[float]] = {"mloop": [], "fastapi": []}
        for _ in range(args.runs):
            port = free_port()
            times["mloop"].append(
                _first_answer(
                    [str(PROJECT_PY), "-m", "mloop", "serve", "--port", str(port)],
                    {
                        **base_env,
                        "MLOOP_HOME": str(folder / "home"),
                        "MLOOP_SERVING__ACCESS_LOG": "false",
                    },
                    f"http://127.0.0.1:{port}/models/hgb/predict",
                    {"records": [ROW]},
                )
            )
            port = free_port()
            times["fastapi"].append(
                _first_answer(
                    [
                        _py("fastapi"),
                        "-m",
                        "uvicorn",
                        "baseline:app",
                        "--port",
                        str(port),
                        "--no-access-log",
                        "--app-dir",
                        str(folder),
                    ],
                    {**base_env, "MODEL": str(model)},
                    f"http://127.0.0.1:{port}/predict",
                    {"records": [ROW]},
                )
            )
    print(f"{'server':8s} {'median s':>9s} {'min s':>7s} {'max s':>7s}  runs={args.runs}")
    for name, values in times.items():
        print(f"{name:8s} {statistics.median(values):9.2f} {min(values):7.2f} {max(values):7.2f}")
    ratio = statistics.median(times["mloop"]) / statistics.median(times["fastapi"])
    print(f"mloop / fastapi start-to-first-answer: {ratio:.2f}x (target: within 1.5x)")


if __name__ == "__main__":
    main()

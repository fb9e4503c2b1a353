"""Serving benchmark: mloop against peers on one model, single-row requests, wrk as the client.

Same model everywhere (HistGradientBoostingClassifier, 20 numeric features, trained in
each peer's own venv from the same generated data), OpenMP/BLAS pinned to one thread in
every server, access logs off everywhere, mloop's prediction cache off (request bodies
repeat). Each peer lives in its own venv under /root/.cache/mloop-bench/<peer>
(created by ``--setup``); a peer whose venv is missing or fails to start is skipped
and reported as such. wrk comes from Debian (``apt-get install wrk``).

    .venv/bin/python benchmarks/serving/bench.py --setup         # create the peer venvs first
    .venv/bin/python benchmarks/serving/bench.py                 # every peer
    .venv/bin/python benchmarks/serving/bench.py --peers mloop,fastapi --duration 5
    .venv/bin/python benchmarks/serving/bench.py --zipf-only     # the 1,000-model scenario

wrk's latency figures are cross-checked with Little's law (concurrency ≈ req/s x mean).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
BENCH = Path("/root/.cache/mloop-bench")
PROJECT_PY = ROOT / ".venv" / "bin" / "python"
PINNED = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
FEATURES = [f"f{i}" for i in range(20)]

TRAIN = """
import sys, joblib, numpy as np, pandas as pd
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
X, y = make_classification(n_samples=5000, n_features=20, n_informative=10, random_state=0)
frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(20)])
named = sys.argv[2] == "frame"
model = HistGradientBoostingClassifier(random_state=0).fit(frame if named else X, y)
joblib.dump(model, sys.argv[1])
joblib.dump((frame, y), sys.argv[1] + ".data")
"""

BASELINE_APP = """
import joblib, numpy as np, orjson, os
from fastapi import FastAPI
from fastapi.responses import Response
from pydantic import BaseModel
model = joblib.load(os.environ["MODEL"])
cols = [f"f{i}" for i in range(20)]
classes = [str(c) for c in model.classes_]
app = FastAPI()
class Req(BaseModel):
    records: list[dict[str, float]]
@app.post("/predict")
async def predict(req: Req):
    x = np.array([[r[c] for c in cols] for r in req.records])
    p = model.predict_proba(x)
    out = [{"label": classes[int(i)], "probabilities": dict(zip(classes, row))}
           for i, row in zip(p.argmax(1), p.tolist())]
    return Response(orjson.dumps({"predictions": out}), media_type="application/json")
"""

BENTO_APP = """
import os, joblib, numpy as np, bentoml
@bentoml.service(workers=1)
class HGB:
    def __init__(self):
        self.model = joblib.load(os.environ["MODEL"])
        self.classes = [str(c) for c in self.model.classes_]
    @bentoml.api
    def predict(self, records: list[dict[str, float]]) -> list[dict]:
        x = np.array([[r[f"f{i}"] for i in range(20)] for r in records])
        p = self.model.predict_proba(x)
        return [{"label": self.classes[int(i)], "probabilities": dict(zip(self.classes, row))}
                for i, row in zip(p.argmax(1), p.tolist())]
"""

RAY_APP = """
import os, sys, time, joblib, numpy as np, ray
from ray import serve
from starlette.requests import Request
@serve.deployment(max_ongoing_requests=128)
class HGB:
    def __init__(self):
        self.model = joblib.load(os.environ["MODEL"])
        self.classes = [str(c) for c in self.model.classes_]
    async def __call__(self, request: Request):
        body = await request.json()
        x = np.array([[r[f"f{i}"] for i in range(20)] for r in body["records"]])
        p = self.model.predict_proba(x)
        return {"predictions": [{"label": self.classes[int(i)], "probabilities": dict(zip(self.classes, row))}
                for i, row in zip(p.argmax(1), p.tolist())]}
ray.init(num_cpus=2, include_dashboard=False)
serve.start(http_options={"host": "127.0.0.1", "port": int(sys.argv[1])})
serve.run(HGB.bind(), route_prefix="/predict")
while True:
    time.sleep(3600)
"""

MLOOP_APP = """
import sys, joblib
from dataclasses import replace
from pathlib import Path
from mloop.config import load_settings
from mloop.registry import Registry
from mloop.server import serve
if __name__ == "__main__":
    home, port, workers, access = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
    s = load_settings(env={}, config_file=None, home=home)
    reg = Registry(s)
    if not reg.with_alias("production"):
        model = joblib.load(sys.argv[5])
        frame, y = joblib.load(sys.argv[5] + ".data")
        reg.register(model, "hgb", training_data=frame, target=y, alias="production")
    s = replace(s, serving=replace(s.serving, port=port, workers=workers, cache_size=0,
                access_log=access, pool_max_models=int(sys.argv[6]),
                predict_threads=int(sys.argv[7]), lone_inline_rows=int(sys.argv[8])))
    serve(s)
"""

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {}
local paths = {}
math.randomseed(__SEED__)
local cdf = {}
local nmodels = __NMODELS__
if nmodels > 1 then
  local total = 0
  for k = 1, nmodels do total = total + 1 / (k ^ 1.1); cdf[k] = total end
  for k = 1, nmodels do cdf[k] = cdf[k] / total end
end
local function pick()
  local u = math.random()
  local lo, hi = 1, nmodels
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo - 1
end
for i = 1, 2000 do
  local v = {}
  for j = 1, __NFEAT__ do v[j] = string.format("%.5f", math.random() * 4 - 2) end
  bodies[i] = __BODY__
  if nmodels > 1 then paths[i] = string.format("__PATHFMT__", pick()) else paths[i] = "__PATH__" end
end
local n = 0
request = function()
  n = n + 1
  local i = (n % 2000) + 1
  return wrk.format(nil, paths[i], nil, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %d, "duration_us": %d, "socket_errors": %d, "non2xx": %d, "p50_us": %d, "p99_us": %d, "mean_us": %f}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""

RECORDS = "'{\"records\": [{' .. REC .. '}]}'"


def _record_expr(nfeat: int) -> str:
    parts = " .. ',' .. ".join(f"'\"f{j}\": ' .. v[{j + 1}]" for j in range(nfeat))
    return parts


def lua_script(kind: str, path: str, nfeat: int = 20, nmodels: int = 1, pathfmt: str = "") -> str:
    rec = _record_expr(nfeat)
    values = " .. ',' .. ".join(f"v[{j + 1}]" for j in range(nfeat))
    body = {
        "records": f"'{{\"records\": [{{' .. {rec} .. '}}]}}'",
        "mlflow": f"'{{\"dataframe_records\": [{{' .. {rec} .. '}}]}}'",
        "v2": f'\'{{"inputs": [{{"name": "input-0", "shape": [1, {nfeat}], '
        f'"datatype": "FP64", "data": [\' .. {values} .. \']}}]}}\'',
    }[kind]
    return (
        LUA.replace("__BODY__", body)
        .replace("__PATHFMT__", pathfmt)
        .replace("__PATH__", path)
        .replace("__NFEAT__", str(nfeat))
        .replace("__NMODELS__", str(nmodels))
        .replace("__SEED__", "42")
    )


@dataclass
class Peer:
    """How to start one server and what to send it."""

    name: str
    venv: str
    path: str
    kind: str
    ready: str
    start: Callable[[Path, int, Path], list[str]]
    named_features: bool = False
    ready_timeout: float = 120.0


def _py(venv: str) -> str:
    return str(PROJECT_PY if venv == "project" else BENCH / venv / "bin" / "python")


def _write(work: Path, name: str, text: str) -> Path:
    path = work / name
    path.write_text(textwrap.dedent(text))
    return path


def _mloop(
    workers: int, threads: int, access: bool = False, lone_rows: int = 16
) -> Callable[[Path, int, Path], list[str]]:
    def start(work: Path, port: int, model: Path) -> list[str]:
        app = _write(work, "mloop_app.py", MLOOP_APP)
        home = work / f"mloop-home-{workers}-{threads}"
        return [
            _py("project"),
            str(app),
            str(home),
            str(port),
            str(workers),
            "1" if access else "0",
            str(model),
            "100",
            str(threads),
            str(lone_rows),
        ]

    return start


def _baseline(work: Path, port: int, model: Path) -> list[str]:
    _write(work, "baseline_app.py", BASELINE_APP)
    return [
        _py("fastapi"),
        "-m",
        "uvicorn",
        "baseline_app:app",
        "--port",
        str(port),
        "--no-access-log",
        "--app-dir",
        str(work),
        "--log-level",
        "warning",
    ]


def _mlserver(work: Path, port: int, model: Path) -> list[str]:
    folder = work / "mlserver"
    folder.mkdir(exist_ok=True)
    subprocess.run(
        [
            _py("mlserver"),
            "-c",
            f"import joblib; m=joblib.load('{model}'); joblib.dump(m, '{folder}/model.joblib')",
        ],
        check=True,
    )
    (folder / "settings.json").write_text(
        json.dumps(
            {"http_port": port, "grpc_port": port + 1, "metrics_port": port + 2, "debug": False}
        )
    )
    (folder / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "hgb",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib"},
                "max_batch_size": 64,
                "max_batch_time": 0.005,
            }
        )
    )
    return [str(BENCH / "mlserver" / "bin" / "mlserver"), "start", str(folder)]


def _bentoml(work: Path, port: int, model: Path) -> list[str]:
    _write(work, "bento_service.py", BENTO_APP)
    return [
        str(BENCH / "bentoml" / "bin" / "bentoml"),
        "serve",
        "bento_service:HGB",
        "--port",
        str(port),
        "--working-dir",
        str(work),
    ]


def _mlflow(work: Path, port: int, model: Path) -> list[str]:
    target = work / "mlflow_model"
    if not target.exists():
        subprocess.run(
            [
                _py("mlflow"),
                "-c",
                f"import joblib, mlflow.sklearn; m=joblib.load('{model}'); mlflow.sklearn.save_model(m, '{target}', serialization_format='cloudpickle')",
            ],
            check=True,
            capture_output=True,
        )
    return [
        str(BENCH / "mlflow" / "bin" / "mlflow"),
        "models",
        "serve",
        "-m",
        str(target),
        "-p",
        str(port),
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
    ]


def _ray(work: Path, port: int, model: Path) -> list[str]:
    app = _write(work, "ray_app.py", RAY_APP)
    return [_py("ray"), str(app), str(port)]


_MLOOP_PATH = "/models/hgb/predict"
_MLOOP_READY = "/v2/health/ready"

PEERS = {
    # mloop defaults: 2 workers, batches predicted in a worker thread.
    "mloop": Peer("mloop", "project", _MLOOP_PATH, "records", _MLOOP_READY, _mloop(2, 2)),
    "mloop-inline": Peer(
        "mloop-inline", "project", _MLOOP_PATH, "records", _MLOOP_READY, _mloop(2, 0)
    ),
    # Every batch through the predict thread, lone requests included (before lone_inline_rows).
    "mloop-thread": Peer(
        "mloop-thread", "project", _MLOOP_PATH, "records", _MLOOP_READY, _mloop(2, 2, lone_rows=0)
    ),
    "mloop-1w": Peer("mloop-1w", "project", _MLOOP_PATH, "records", _MLOOP_READY, _mloop(1, 2)),
    "mloop-log": Peer(
        "mloop-log", "project", _MLOOP_PATH, "records", _MLOOP_READY, _mloop(2, 2, access=True)
    ),
    "fastapi": Peer("fastapi", "fastapi", "/predict", "records", "/docs", _baseline),
    "mlserver": Peer(
        "mlserver", "mlserver", "/v2/models/hgb/infer", "v2", "/v2/models/hgb/ready", _mlserver
    ),
    "bentoml": Peer("bentoml", "bentoml", "/predict", "records", "/readyz", _bentoml),
    "mlflow": Peer("mlflow", "mlflow", "/invocations", "mlflow", "/ping", _mlflow, True),
    "ray": Peer("ray", "ray", "/predict", "records", "/-/healthz", _ray),
}


def _sklearn_pin() -> str:
    """The project's scikit-learn version, so every peer predicts with the same library."""
    out = subprocess.run(
        [_py("project"), "-c", "import sklearn; print(sklearn.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return f"scikit-learn=={out.stdout.strip()}"


# What each peer's venv holds (the versions measured in RESULTS.md).
PEER_PACKAGES = {
    "fastapi": ["fastapi", "uvicorn[standard]", "orjson", "joblib", "pandas", "threadpoolctl"],
    # MLServer 1.7.1's inference worker crashes on start with uvloop 0.22.
    "mlserver": ["mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop<0.21", "joblib"],
    "bentoml": ["bentoml", "joblib", "pandas"],
    "mlflow": ["mlflow", "joblib", "pandas"],
    "ray": ["ray[serve]", "joblib", "pandas"],
}


def setup_peers(names: list[str]) -> None:
    """Create each named peer's venv under BENCH (never the project's) with uv."""
    uv = ROOT / ".venv" / "bin" / "uv"
    pin = _sklearn_pin()
    for name in names:
        venv = PEERS[name].venv if name in PEERS else name
        if venv == "project" or venv not in PEER_PACKAGES or (BENCH / venv / ".ok").exists():
            continue
        target = BENCH / venv
        print(f"setting up {target}", flush=True)
        subprocess.run([str(uv), "venv", "-q", "--python", "3.11", str(target)], check=True)
        subprocess.run(
            [str(uv), "pip", "install", "-q", "--python", str(target / "bin" / "python"), pin]
            + PEER_PACKAGES[venv],
            check=True,
        )
        (target / ".ok").touch()


def first_answer(url: str, kind: str, timeout: float) -> bool:
    """Wait until one real prediction succeeds (some servers report ready before that)."""
    record = {f: 0.0 for f in FEATURES}
    body: dict[str, object] = {
        "records": {"records": [record]},
        "mlflow": {"dataframe_records": [record]},
        "v2": {
            "inputs": [
                {"name": "input-0", "shape": [1, 20], "datatype": "FP64", "data": [0.0] * 20}
            ]
        },
    }[kind]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.post(url, json=body, timeout=30).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(
    url: str, proc: subprocess.Popen[bytes], timeout: float, check: Callable[[], bool] | None = None
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if httpx.get(url, timeout=2).status_code == 200 and (check is None or check()):
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def run_wrk(url: str, script: Path, concurrency: int, duration: float) -> dict[str, float]:
    threads = min(2, concurrency)
    out = subprocess.run(
        [
            "wrk",
            "-t",
            str(threads),
            "-c",
            str(concurrency),
            "-d",
            f"{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("WRKJSON"))
    data = json.loads(line.split(" ", 1)[1])
    seconds = data["duration_us"] / 1e6
    rps = data["requests"] / seconds
    mean_s = data["mean_us"] / 1e6
    return {
        "rps": rps,
        "p50_ms": data["p50_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
        "errors": data["socket_errors"] + data["non2xx"],
        "requests": data["requests"],
        # Little's law: in-flight requests implied by throughput x mean latency.
        "little": rps * mean_s,
    }


def run_raw(url: str, kind: str, concurrency: int, duration: float) -> dict[str, float]:
    """The raw asyncio client (passes the Little's-law check), in its own process."""
    if kind not in ("records", "v2"):
        raise ValueError(f"the raw client sends records or v2 bodies, not {kind}")
    cmd = [_py("project"), str(Path(__file__).parent / "rawclient.py"), url]
    cmd += ["-c", str(concurrency), "-d", str(duration)] + (["--v2"] if kind == "v2" else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def server_cpu_s(session: int) -> float:
    """CPU seconds (user + system) used so far by every live process of a server's session."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:  # field 6 of stat (session id), counted after the name
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def in_process_limit(model_path: Path) -> dict[str, float]:
    code = f"""
import os, time, json, joblib, numpy as np
from threadpoolctl import threadpool_limits
threadpool_limits(1)
model = joblib.load('{model_path}')
frame, y = joblib.load('{model_path}.data')
X = frame.to_numpy()
res = {{}}
for batch in (1, 64):
    n = 0; t = time.perf_counter()
    while time.perf_counter() - t < 3:
        i = (n * batch) % (len(X) - batch)
        model.predict_proba(X[i:i + batch]); n += 1
    res[f"rows_per_s_batch{{batch}}"] = n * batch / (time.perf_counter() - t)
print(json.dumps(res))
"""
    out = subprocess.run(
        [_py("project"), "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **PINNED},
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_peer(
    peer: Peer,
    work: Path,
    models: dict[bool, Path],
    concurrencies: list[int],
    duration: float,
    client: str = "wrk",
) -> dict[str, object]:
    if peer.venv != "project" and not (BENCH / peer.venv / ".ok").exists():
        return {"skipped": f"venv {BENCH / peer.venv} missing or failed to install"}
    port = free_port()
    cmd = peer.start(work, port, models[peer.named_features])
    log = open(work / f"{peer.name}.log", "wb")  # noqa: SIM115 - closed in finally
    venv_bin = str(Path(_py(peer.venv)).parent)  # e.g. mlflow execs `uvicorn` from PATH
    proc = subprocess.Popen(
        cmd,
        cwd=work,
        env={
            **os.environ,
            **PINNED,
            "MODEL": str(models[False]),
            "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_ready(base + peer.ready, proc, peer.ready_timeout):
            return {"skipped": f"did not become ready; see {work / (peer.name + '.log')}"}
        script = work / f"{peer.name}.lua"
        script.write_text(lua_script(peer.kind, peer.path))
        if not first_answer(base + peer.path, peer.kind, peer.ready_timeout):
            return {"skipped": "never answered a prediction with 200"}
        probe = run_wrk(base, script, 1, 1)  # warm-up, also proves 2xx answers
        if probe["errors"] or not probe["requests"]:
            return {"skipped": f"requests failed during warm-up ({probe['errors']} errors)"}
        results: dict[str, object] = {}
        for c in concurrencies:
            cpu = server_cpu_s(proc.pid)
            if client == "raw" and peer.kind in ("records", "v2"):
                row = run_raw(base + peer.path, peer.kind, c, duration)
            else:
                row = run_wrk(base, script, c, duration)
            served = row["rps"] * duration
            row["cpu_us"] = (server_cpu_s(proc.pid) - cpu) / served * 1e6 if served else 0.0
            results[str(c)] = row
            print(f"  {peer.name:9s} c={c:3d} {results[str(c)]}", flush=True)
        return results
    finally:
        stop(proc)
        log.close()


def zipf_scenario(
    duration: float, concurrency: int, nmodels: int, budget: int
) -> dict[str, object]:
    home = BENCH / "zipf-home"
    if not (home / ".complete").exists():
        subprocess.run(
            [
                _py("project"),
                str(Path(__file__).parent / "zipf_models.py"),
                str(home),
                str(nmodels),
            ],
            check=True,
            env={**os.environ, **PINNED},
        )
    work = Path(tempfile.mkdtemp(prefix="mloop-zipf-"))
    port = free_port()
    app = _write(work, "mloop_app.py", MLOOP_APP)
    log = open(work / "zipf.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [_py("project"), str(app), str(home), str(port), "1", "0", "-", str(budget), "2", "16"],
        env={**os.environ, **PINNED},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_ready(base + "/v2/health/ready", proc, 300):
            return {"skipped": f"server did not start; see {work / 'zipf.log'}"}
        script = work / "zipf.lua"
        script.write_text(
            lua_script(
                "records", "", nfeat=5, nmodels=nmodels, pathfmt="/models/customer%04d/predict"
            )
        )
        result: dict[str, object] = dict(run_wrk(base, script, concurrency, duration))
        metrics = httpx.get(base + "/metrics").text
        values = {}
        for line in metrics.splitlines():
            for key in (
                'mloop_pool_lookups{result="hit"}',
                'mloop_pool_lookups{result="miss"}',
                "mloop_pool_loads_total",
                "mloop_pool_evictions_total",
                "mloop_pool_resident_models",
                "mloop_resident_memory_bytes",
            ):
                if line.startswith(key + " "):
                    values[key] = float(line.split()[-1])
        hits = values.get('mloop_pool_lookups{result="hit"}', 0)
        misses = values.get('mloop_pool_lookups{result="miss"}', 0)
        result.update(
            {
                "models": nmodels,
                "budget_models": budget,
                "concurrency": concurrency,
                "pool_hit_rate": hits / (hits + misses) if hits + misses else None,
                "loads": values.get("mloop_pool_loads_total"),
                "evictions": values.get("mloop_pool_evictions_total"),
                "resident": values.get("mloop_pool_resident_models"),
                "rss_mb": values.get("mloop_resident_memory_bytes", 0) / 1e6,
            }
        )
        return result
    finally:
        stop(proc)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default="mloop,mloop-1w,fastapi,mlserver,bentoml,mlflow,ray")
    parser.add_argument("--concurrency", default="1,8,64")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--setup", action="store_true", help="create missing peer venvs first")
    parser.add_argument("--zipf-only", action="store_true")
    parser.add_argument("--no-zipf", action="store_true")
    parser.add_argument(
        "--client",
        choices=("wrk", "raw"),
        default="wrk",
        help="raw: rawclient.py (passes Little's law) for records/v2 peers; wrk for the rest.",
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results.json"))
    args = parser.parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    if args.setup:
        setup_peers(args.peers.split(","))
    work = Path(tempfile.mkdtemp(prefix="mloop-bench-"))
    report: dict[str, object] = {
        "load_before": os.getloadavg(),
        "client": args.client,
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    if not args.zipf_only:
        models = {}
        for named in (False, True):
            path = work / f"model-{'frame' if named else 'array'}.joblib"
            subprocess.run(
                [_py("project"), "-c", TRAIN, str(path), "frame" if named else "array"],
                check=True,
                env={**os.environ, **PINNED},
            )
            models[named] = path
        report["in_process"] = in_process_limit(models[False])
        print("in-process:", report["in_process"], flush=True)
        peers: dict[str, object] = {}
        for name in args.peers.split(","):
            # A peer named twice (paired A/B runs) keeps every run: "mloop", "mloop#2", ...
            key = (
                name
                if name not in peers
                else f"{name}#{sum(k.split('#')[0] == name for k in peers) + 1}"
            )
            print(f"== {key} (load {os.getloadavg()[0]:.2f})", flush=True)
            try:
                peers[key] = bench_peer(
                    PEERS[name], work, models, concurrencies, args.duration, args.client
                )
            except Exception as exc:  # one broken peer must not end the run
                peers[key] = {"skipped": f"{type(exc).__name__}: {exc}"[:300]}
            if "skipped" in peers[key]:  # type: ignore[operator]
                print(f"  skipped: {peers[key]['skipped']}", flush=True)  # type: ignore[index]
        report["peers"] = peers
    if not args.no_zipf:
        print("== zipf (1,000 models, budget 100)", flush=True)
        report["zipf"] = zipf_scenario(max(args.duration, 20), 32, 1000, 100)
        print(" ", report["zipf"], flush=True)
    report["load_after"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(report, indent=2))
    print_table(report)


def print_table(report: dict[str, object]) -> None:
    peers = report.get("peers") or {}
    assert isinstance(peers, dict)
    baseline = peers.get("fastapi") or {}
    print(
        f"\n{'peer':10s} {'conc':>4s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>6s} {'little':>6s} {'cpu us':>7s} {'vs fastapi':>10s}"
    )
    for name, res in peers.items():
        if "skipped" in res:
            print(f"{name:10s} skipped: {res['skipped']}")
            continue
        for c, r in res.items():
            base = baseline.get(c) if isinstance(baseline, dict) else None
            ratio = f"{r['rps'] / base['rps']:.2f}x" if base and "rps" in base else "-"
            # "-": the server's processes left its session (BentoML's workers do).
            cpu = f"{r['cpu_us']:.0f}" if r.get("cpu_us") else "-"
            print(
                f"{name:10s} {c:>4s} {r['rps']:8.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['errors']:6d} {r['little']:6.1f} {cpu:>7s} {ratio:>10s}"
            )


if __name__ == "__main__":
    sys.exit(main())

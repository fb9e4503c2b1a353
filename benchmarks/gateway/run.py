"""Side-by-side benchmark: no retries, tenacity, LiteLLM Router (default, tuned) and mloop.

    .venv/bin/python benchmarks/gateway/run.py [--only mloop,litellm-default] [--no-fault]

Each client gets its own mock provider process (same quotas, same seeded
workload), clients run 1-3 at a time in four phases, and the numbers are compared with the
analytic optimum the quotas allow. Peers install into their own venv under
/root/.cache/mloop-bench/gateway-peers, never into the project venv.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import workload as wl  # noqa: E402

PEER_VENV = Path("/root/.cache/mloop-bench/gateway-peers")
CLIENTS = ["none", "tenacity", "litellm-default", "litellm-tuned", "mloop"]
# Fault scenario (scaled time): big answers 503 from 4 s to 14 s after the start.
FAULT_AT_S, FAULT_FOR_S = 4.0, 10.0


def ensure_peer_venv() -> Path:
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    probe = subprocess.run(
        [str(python), "-c", "import litellm, tenacity, httpx"], capture_output=True
    )
    if probe.returncode != 0:
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "litellm", "tenacity", "httpx"], check=True
        )
    return python


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_provider(models: dict[str, Any]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mloop.gateway.testing",
            "--port",
            str(port),
            "--models",
            json.dumps(models),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(f"{url}/v1/models", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("mock provider did not start")


def run_client(
    name: str, fault: bool, workload_file: Path, tmp: Path, peer: Path, window_s: float = 60.0
) -> dict[str, Any]:
    proc, url = start_provider(wl.provider_models(fault=fault, window_s=window_s))
    out = tmp / f"{name}-{'fault' if fault else 'normal'}.json"
    python = sys.executable if name == "mloop" else str(peer)
    timer = None
    try:
        if fault:

            def trigger() -> None:
                r = httpx.post(f"{url}/mock/fault", json={"model": "big", "seconds": FAULT_FOR_S})
                print(f"fault injected for {name}: {r.status_code}", file=sys.stderr)

            timer = threading.Timer(FAULT_AT_S, trigger)
        client = subprocess.Popen(
            [python, str(HERE / "clients.py"), name, url, str(workload_file), str(out)],
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert client.stdout is not None
        client.stdout.readline()  # "START": the client begins its replay now
        if timer is not None:
            timer.start()
        _, err = client.communicate(timeout=400)
        if client.returncode != 0:
            raise RuntimeError(f"{name} failed: {err.decode()[-2000:]}")
        stats = httpx.get(f"{url}/mock/stats").json()
    finally:
        if timer is not None:
            timer.cancel()
        proc.terminate()
        proc.wait(timeout=10)
    records = json.loads(out.read_text())
    cpu = records.pop()["cpu_s"]
    return {"client": name, "fault": fault, "records": records, "stats": stats, "cpu_s": cpu}


def summarize(run: dict[str, Any], opt: dict[str, Any], horizon: float) -> dict[str, Any]:
    recs = run["records"]
    ok = [r for r in recs if r["ok"]]
    stats = run["stats"]
    calls = sum(s["calls"] for s in stats.values())
    r429 = sum(s["rate_limited"] for s in stats.values())
    p99 = {
        p: wl.percentile([r["latency"] for r in ok if r["priority"] == p], 99)
        for p in ("interactive", "batch")
    }
    in_time = sum(1 for r in ok if r["done_at"] <= horizon)
    errors = Counter(str(r.get("error")) for r in recs if not r["ok"])
    return {
        "client": run["client"] + (" (fault)" if run["fault"] else ""),
        "requests": len(recs),
        "failed": len(recs) - len(ok),
        "goodput_vs_opt": in_time / opt["completed"],
        "provider_calls": calls,
        "429s": r429,
        "429_pct": 100.0 * r429 / max(1, calls),
        "503s": sum(s["faults"] for s in stats.values()),
        "errors": ", ".join(f"{k} {v}" for k, v in errors.most_common(2)) or "-",
        "p99_interactive_s": p99["interactive"],
        "p99_batch_s": p99["batch"],
        "fallback_pct": 100.0
        * sum(1 for r in ok if "small" in str(r.get("model")))
        / max(1, len(ok)),
        "cpu_ms_per_req": 1000.0 * run["cpu_s"] / max(1, len(recs)),
    }


COLUMNS = [
    ("client", "{}"),
    ("requests", "{}"),
    ("failed", "{}"),
    ("goodput_vs_opt", "{:.0%}"),
    ("provider_calls", "{}"),
    ("429s", "{}"),
    ("429_pct", "{:.1f}%"),
    ("503s", "{}"),
    ("p99_interactive_s", "{:.2f}"),
    ("p99_batch_s", "{:.2f}"),
    ("fallback_pct", "{:.0f}%"),
    ("cpu_ms_per_req", "{:.1f}"),
    ("errors", "{}"),
]


def table(rows: list[dict[str, Any]]) -> str:
    head = "| " + " | ".join(c for c, _ in COLUMNS) + " |"
    sep = "|" + "|".join("---" for _ in COLUMNS) + "|"
    lines = [head, sep]
    for row in rows:
        lines.append("| " + " | ".join(f.format(row[c]) for c, f in COLUMNS) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="", help="comma-separated clients")
    parser.add_argument("--no-fault", action="store_true")
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    parser.add_argument(
        "--provider-window",
        type=float,
        default=60.0,
        help="window (s) the provider counts and reports its limits in; clients stay per minute",
    )
    args = parser.parse_args()
    chosen = [c for c in CLIENTS if not args.only or c in args.only.split(",")]
    peer = ensure_peer_venv() if any(c != "mloop" for c in chosen) else Path(sys.executable)
    workload = wl.make_workload()
    opt = wl.optimum(workload)
    horizon = opt["makespan_s"] + 2.0
    # Phases of similar weight, so mloop's numbers are not taken while a LiteLLM
    # process saturates the two cores beside it.
    plan = [
        [("none", False), ("tenacity", False), ("litellm-default", True)],
        [("litellm-default", False), ("litellm-tuned", False)],
        [("mloop", False)],
        [("mloop", True)],
    ]
    phases = [
        [job for job in phase if job[0] in chosen and not (args.no_fault and job[1])]
        for phase in plan
    ]
    phases = [p for p in phases if p]
    started = time.time()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        wfile = tmp / "workload.json"
        wfile.write_text(wl.dump(workload))
        for phase in phases:
            with ThreadPoolExecutor(max_workers=len(phase)) as pool:
                runs += list(
                    pool.map(
                        lambda j: run_client(
                            j[0], j[1], wfile, tmp, peer, window_s=args.provider_window
                        ),
                        phase,
                    )
                )
    rows = [summarize(r, opt, horizon) for r in runs]
    n_int = sum(1 for r in workload if r.priority == "interactive")
    header = (
        f"Workload: {len(workload)} requests ({n_int} interactive, {len(workload) - n_int} batch "
        f"in three bursts) over {workload[-1].t:.0f} s (90 s compressed x{wl.SCALE:g}); "
        f"optimum completes all {opt['completed']} by {opt['makespan_s']:.1f} s, interactive "
        f"p99 {opt['p99']['interactive']:.2f} s, batch p99 {opt['p99']['batch']:.2f} s. "
        f"Goodput = successes finished by {horizon:.1f} s / optimum. Wall time "
        f"{time.time() - started:.0f} s; clients ran in {len(phases)} phases of 1-3 at once. "
        f"The provider counts and reports its limits per {args.provider_window:g} s."
    )
    text = header + "\n\n" + table(rows)
    print(text)
    out = Path(args.results)
    begin, end = "<!-- results -->", "<!-- /results -->"
    old = out.read_text() if out.exists() else f"# Gateway benchmark results\n\n{begin}\n{end}\n"
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        out.write_text(f"{head}{begin}\n{text}\n{end}{rest.split(end, 1)[1]}")
    else:
        out.write_text(f"{old}\n{begin}\n{text}\n{end}\n")


if __name__ == "__main__":
    main()

"""Gateway for teams: budgets across two replicas, cache hits, added latency vs LiteLLM.

    .venv/bin/python benchmarks/gateway/teams.py [--ledger sql|redis] [--calls 400]

1. Budget enforcement: two ``mloop gateway serve`` processes share one ledger (the
   PostgreSQL database at 127.0.0.1:5432 when reachable, else a SQLite file; or Redis
   with ``--ledger redis``). One key with a USD day budget; 64 concurrent requests split
   across the replicas. Reports overspend (real cost of served requests beyond the
   budget) and false 429s (refusals whose body shows the request would have fit, and any
   refusal when the budget holds all 64).
2. Cache-hit latency: a temperature-0 request repeated; p50 of misses and of hits.
3. Added latency per request, sequential, against a mock provider that answers at once:
   direct call, through mloop, through the LiteLLM proxy (own venv under
   ~/.cache/mloop-bench/litellm; skipped with a note when it is not installed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

LITELLM = Path.home() / ".cache" / "mloop-bench" / "litellm" / "bin" / "litellm"
LITELLM_KEY = "sk-mloop-bench-0123456789abcdef0123456789abcdef"
PG = "postgresql://postgres@127.0.0.1:5432/"
IN_PER_1K, OUT_PER_1K = 0.5, 1.5
MAX_TOKENS = 50
BODY = {"model": "smart", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 50}
MAX_COST_MICRO = math.ceil((16 * IN_PER_1K + MAX_TOKENS * OUT_PER_1K) * 1000)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reachable(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_ready(url: str, proc: subprocess.Popen[bytes], path: str = "/healthz") -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            httpx.get(url + path, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not start")


def start(args: list[str], env: dict[str, str], url: str, path: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        args,
        env={**os.environ, "OMP_NUM_THREADS": "1", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_ready(url, proc, path)
    return proc


def provider() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    models = json.dumps({"big": {}})
    cmd = [sys.executable, "-m", "mloop.gateway.testing", "--port", str(port), "--models", models]
    return start(cmd, {}, url, "/v1/models"), url


def gateway_toml(tmp: Path, provider_url: str, **extra: str) -> Path:
    text = f"""
[[deployments]]
name = "big"
base_url = "{provider_url}/v1"
model = "big"
input_cost_per_1k = {IN_PER_1K}
output_cost_per_1k = {OUT_PER_1K}

[routes.smart]
chain = ["big"]
"""
    for table, body in extra.items():
        text += f"\n[{table}]\n{body}\n"
    path = tmp / f"gateway-{len(list(tmp.glob('gateway-*')))}.toml"
    path.write_text(text)
    return path


def serve(config: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "mloop.cli._main", "gateway", "serve", "-c", str(config)]
    return start([*cmd, "--port", str(port)], env, url, "/healthz"), url


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- 1. budgets across two replicas ----------------------------------------------------


def budget_run(tmp: Path, provider_url: str, ledger: str, fits: int) -> dict[str, Any]:
    from mloop.auth import KeyStore, Limits, LimitStore
    from mloop.config import load_settings
    from mloop.store import MetadataStore

    home = tmp / f"home-{ledger}-{fits}"
    env = {"MLOOP_HOME": str(home), "MLOOP_GATEWAY__AUTH": "on"}
    db_name = ""
    if reachable(5432):
        import sqlalchemy as sa

        db_name = f"mloop_bench_{os.getpid()}_{fits}_{ledger}"
        admin = sa.create_engine(PG + "postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{db_name}"'))
        admin.dispose()
        env["MLOOP_DATABASE_URL"] = PG + db_name
    settings = load_settings(env=env, config_file=None)
    store = MetadataStore.from_settings(settings)
    info, token = KeyStore(store).create("bench", ["gateway"])
    budget_micro = fits * MAX_COST_MICRO + MAX_COST_MICRO // 2
    LimitStore(store).set_key(info.key_id, Limits(budgets_usd={"day": budget_micro / 1e6}))
    store.dispose()
    extra = {"budgets": f'ledger = "{ledger}"'}
    if ledger == "redis":
        prefix = f"mloop:bench:{os.getpid()}:{fits}:"
        extra["scheduler"] = f'redis_url = "redis://127.0.0.1:6379/0"\nkey_prefix = "{prefix}"'
    config = gateway_toml(tmp, provider_url, **extra)
    replicas = [serve(config, env) for _ in range(2)]
    try:
        responses = asyncio.run(storm([url for _, url in replicas], token))
    finally:
        for proc, _ in replicas:
            proc.terminate()
            proc.wait(timeout=20)
    ok = [r for r in responses if r.status_code == 200]
    refused = [r.json()["error"] for r in responses if r.status_code == 429]
    spent = 0
    for r in ok:
        usage = r.json()["usage"]
        usd = (usage["prompt_tokens"] * IN_PER_1K + usage["completion_tokens"] * OUT_PER_1K) / 1e3
        spent += math.ceil(round(usd * 1e6, 6))
    false_429 = sum(1 for e in refused if e["remaining"] >= e["requested"])
    if fits >= 64:
        false_429 = len(refused)
    if db_name:
        import sqlalchemy as sa

        admin = sa.create_engine(PG + "postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        admin.dispose()
    return {
        "ledger": ledger if ledger == "redis" else ("postgresql" if db_name else "sqlite"),
        "budget_fits_by_max_cost": fits,
        "served": len(ok),
        "refused_429": len(refused),
        "other": len(responses) - len(ok) - len(refused),
        "budget_usd": budget_micro / 1e6,
        "spent_usd": spent / 1e6,
        "overspend_usd": max(0, spent - budget_micro) / 1e6,
        "false_429": false_429,
    }


async def storm(urls: list[str], token: str, n: int = 64) -> list[httpx.Response]:
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=60) as http:
        return await asyncio.gather(
            *(
                http.post(f"{urls[i % len(urls)]}/v1/chat/completions", json=BODY, headers=headers)
                for i in range(n)
            )
        )


# --- 2 and 3. latency -----------------------------------------------------------------


def timed(
    http: httpx.Client, url: str, body: dict[str, Any], n: int, token: str = ""
) -> list[float]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = http.post(url, json=body, headers=headers)
        out.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
    return out


def litellm_proxy(tmp: Path, provider_url: str) -> tuple[subprocess.Popen[bytes], str] | None:
    if not LITELLM.exists():
        return None
    config = tmp / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: smart\n"
        "    litellm_params:\n"
        "      model: openai/big\n"
        f"      api_base: {provider_url}/v1\n"
        "      api_key: unused\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_KEY}\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [str(LITELLM), "--config", str(config), "--port", str(port), "--num_workers", "1"]
    env = {"LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False"}
    return start(cmd, env, url, "/health/liveliness"), url


def latency(tmp: Path, provider_url: str, calls: int) -> dict[str, Any]:
    from mloop.auth import KeyStore, Limits, LimitStore
    from mloop.config import load_settings
    from mloop.store import MetadataStore

    home = tmp / "home-latency"
    env = {"MLOOP_HOME": str(home), "MLOOP_GATEWAY__AUTH": "off"}
    keyed_env = {**env, "MLOOP_GATEWAY__AUTH": "on"}
    store = MetadataStore.from_settings(load_settings(env=env, config_file=None))
    _, token = KeyStore(store).create("bench", ["gateway"])
    budgeted, budget_token = KeyStore(store).create("bench-budget", ["gateway"])
    LimitStore(store).set_key(budgeted.key_id, Limits(budgets_usd={"day": 1e6}))
    store.dispose()
    plain, plain_url = serve(gateway_toml(tmp, provider_url), env)
    keyed, keyed_url = serve(gateway_toml(tmp, provider_url), keyed_env)
    cached, cached_url = serve(gateway_toml(tmp, provider_url, cache='backend = "memory"'), env)
    peer = litellm_proxy(tmp, provider_url)
    out: dict[str, Any] = {}
    try:
        with httpx.Client(timeout=30) as http:
            targets = {
                "direct": (f"{provider_url}/v1/chat/completions", {**BODY, "model": "big"}, ""),
                "mloop_open": (f"{plain_url}/v1/chat/completions", BODY, ""),
                "mloop_key": (f"{keyed_url}/v1/chat/completions", BODY, token),
                "mloop_key_with_budget": (
                    f"{keyed_url}/v1/chat/completions",
                    BODY,
                    budget_token,
                ),
            }
            if peer is not None:
                targets["litellm"] = (f"{peer[1]}/v1/chat/completions", BODY, LITELLM_KEY)
            for url, body, key in targets.values():
                timed(http, url, body, 50, key)  # warm-up
            samples: dict[str, list[float]] = {name: [] for name in targets}
            for _ in range(calls // 50):  # interleaved rounds: the same machine noise for all
                for name, (url, body, key) in targets.items():
                    samples[name] += timed(http, url, body, 50, key)
            for name, values in samples.items():
                out[name] = {
                    "p50_ms": round(statistics.median(values), 3),
                    "p95_ms": round(percentile(values, 0.95), 3),
                }
            direct = out["direct"]["p50_ms"]
            for name in samples:
                out[name]["added_p50_ms"] = round(out[name]["p50_ms"] - direct, 3)
            if "litellm" in out:
                for mine in ("mloop_open", "mloop_key", "mloop_key_with_budget"):
                    out[f"litellm_added_over_{mine}_added"] = round(
                        out["litellm"]["added_p50_ms"] / max(out[mine]["added_p50_ms"], 1e-9), 2
                    )
            else:
                out["litellm"] = f"not installed at {LITELLM}"
            miss_body = {**BODY, "temperature": 0}
            misses, hits = [], []
            for i in range(calls // 2):
                body = {**miss_body, "messages": [{"role": "user", "content": f"q{i}"}]}
                misses += timed(http, f"{cached_url}/v1/chat/completions", body, 1)
                hits += timed(http, f"{cached_url}/v1/chat/completions", body, 1)
            out["cache"] = {
                "miss_p50_ms": round(statistics.median(misses), 3),
                "hit_p50_ms": round(statistics.median(hits), 3),
                "hit_p95_ms": round(percentile(hits, 0.95), 3),
            }
    finally:
        for proc in (plain, keyed, cached, *([peer[0]] if peer else [])):
            proc.terminate()
            proc.wait(timeout=20)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ledger", default="sql", choices=["sql", "redis"])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    report: dict[str, Any] = {}
    prov, provider_url = provider()
    try:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            report["budgets"] = [
                budget_run(tmp, provider_url, args.ledger, fits) for fits in (20, 64)
            ]
            if not args.skip_latency:
                report["latency"] = latency(tmp, provider_url, args.calls)
    finally:
        prov.terminate()
        prov.wait(timeout=20)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

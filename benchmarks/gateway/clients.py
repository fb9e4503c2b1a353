"""Replay the workload through one client and write per-request records as JSON.

    python clients.py CLIENT PROVIDER_URL WORKLOAD.json OUT.json

CLIENT is one of: none, tenacity, litellm-default, litellm-tuned, mloop. The
peers run from their own venv (/root/.cache/mloop-bench/gateway-peers); mloop
runs from the project venv. Every client asks for the big model first and may
use the small one as its fallback, as each library documents it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import workload as wl

Send = Callable[[wl.Request], Awaitable[str]]


def messages(req: wl.Request) -> list[dict[str, str]]:
    return [{"role": "user", "content": req.prompt}]


class Rejected(Exception):
    """The provider answered an error status."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(status)
        self.status = status
        self.retry_after = retry_after


def _aiohttp_post(url: str) -> tuple[Callable[[str, wl.Request], Awaitable[str]], Any]:
    # aiohttp, not httpx: httpcore's pool does O(connections^2) work per request,
    # which would starve these plain clients of CPU at this load and misstate them.
    import aiohttp

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=500), timeout=aiohttp.ClientTimeout(total=60)
    )

    async def post(model: str, req: wl.Request) -> str:
        body = {"model": model, "messages": messages(req), "max_tokens": req.max_tokens}
        async with session.post(f"{url}/v1/chat/completions", json=body) as r:
            await r.read()
            if r.status != 200:
                raise Rejected(r.status, None)
        return model

    return post, session.close


def client_none(url: str) -> tuple[Send, Callable[[], Awaitable[None]]]:
    post, close = _aiohttp_post(url)

    async def send(req: wl.Request) -> str:
        return await post("big", req)

    return send, close


def client_tenacity(url: str) -> tuple[Send, Callable[[], Awaitable[None]]]:
    from tenacity import (
        AsyncRetrying,
        retry_if_exception_type,
        stop_after_attempt,
        wait_random_exponential,
    )

    post, close = _aiohttp_post(url)

    async def send(req: wl.Request) -> str:
        for model in ("big", "small"):  # hand-written fallback after the retries
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(5),
                    wait=wait_random_exponential(multiplier=0.5, max=10),
                    retry=retry_if_exception_type(Rejected),
                    reraise=True,
                ):
                    with attempt:
                        return await post(model, req)
            except Rejected:
                if model == "small":
                    raise
        raise AssertionError("unreachable")

    return send, close


def client_litellm(url: str, tuned: bool) -> tuple[Send, Callable[[], Awaitable[None]]]:
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    import litellm
    from litellm import Router

    litellm.suppress_debug_info = True
    models = wl.provider_models()
    model_list = [
        {
            "model_name": name,
            "litellm_params": {
                "model": f"openai/{name}",
                "api_base": f"{url}/v1",
                "api_key": "unused",
                "rpm": m["rpm"],
                "tpm": m["tpm"],
            },
        }
        for name, m in models.items()
    ]
    if tuned:
        for item, (_, m) in zip(model_list, models.items(), strict=True):
            item["litellm_params"]["max_parallel_requests"] = m["max_concurrency"]
        router = Router(
            model_list=model_list,
            fallbacks=[{"big": ["small"]}],
            num_retries=5,
            retry_after=1,
            routing_strategy="usage-based-routing-v2",
            enable_pre_call_checks=True,
            allowed_fails=3,
            cooldown_time=5,
            timeout=120,
        )
    else:
        router = Router(model_list=model_list, fallbacks=[{"big": ["small"]}], num_retries=3)

    async def send(req: wl.Request) -> str:
        r = await router.acompletion(model="big", messages=messages(req), max_tokens=req.max_tokens)
        return str(r.model)

    async def close() -> None:
        return None

    return send, close


def client_mloop(url: str) -> tuple[Send, Callable[[], Awaitable[None]]]:
    from mloop.gateway import Client, parse_config

    models = wl.provider_models()
    config = parse_config(
        {
            "deployments": [
                {
                    "name": name,
                    "base_url": f"{url}/v1",
                    "model": name,
                    "rpm": m["rpm"],
                    "tpm": m["tpm"],
                    "max_concurrency": m["max_concurrency"],
                }
                for name, m in models.items()
            ],
            "routes": {"smart": {"chain": ["big", "small"]}},
            "scheduler": {"batch_aging_s": 20},
        }
    )
    client = Client(config, env={})

    async def send(req: wl.Request) -> str:
        r = await client.chat(
            "smart", messages(req), priority=req.priority, max_tokens=req.max_tokens
        )
        return r.deployment

    return send, client.aclose


async def replay(send: Send, workload: list[wl.Request], limit_s: float) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    print("START", flush=True)  # the driver times the fault injection from here
    records: list[dict[str, Any]] = []

    async def one(req: wl.Request) -> None:
        await asyncio.sleep(max(0.0, start + req.t - loop.time()))
        t0 = loop.time()
        rec: dict[str, Any] = {"priority": req.priority, "arrival": req.t}
        try:
            rec["model"] = await asyncio.wait_for(send(req), timeout=limit_s - req.t)
            rec["ok"] = True
        except Exception as exc:  # every failure is a failed request for the user
            rec["ok"] = False
            rec["error"] = type(exc).__name__
        rec["latency"] = loop.time() - t0
        rec["done_at"] = loop.time() - start
        records.append(rec)

    await asyncio.gather(*(one(r) for r in workload))
    return records


def main() -> None:
    name, url, workload_path, out_path = sys.argv[1:5]
    workload = wl.load(Path(workload_path).read_text())
    factories: dict[str, Callable[[], tuple[Send, Callable[[], Awaitable[None]]]]] = {
        "none": lambda: client_none(url),
        "tenacity": lambda: client_tenacity(url),
        "litellm-default": lambda: client_litellm(url, tuned=False),
        "litellm-tuned": lambda: client_litellm(url, tuned=True),
        "mloop": lambda: client_mloop(url),
    }
    limit_s = workload[-1].t + float(os.environ.get("BENCH_DRAIN_S", "20"))

    async def run() -> list[dict[str, Any]]:
        send, close = factories[name]()
        cpu0 = time.process_time()
        records = await replay(send, workload, limit_s)
        await close()
        records.append({"cpu_s": time.process_time() - cpu0})
        return records

    records = asyncio.run(run())
    Path(out_path).write_text(json.dumps(records))


if __name__ == "__main__":
    main()

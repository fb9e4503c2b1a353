"""A mock OpenAI-compatible provider with real rate limits, for tests and benchmarks.

Each model has RPM, TPM and concurrency limits enforced like a hosted provider:
continuous buckets (limit per ``window_s``, burst of ``burst_s`` worth), tokens
charged at admission as prompt + ``max_tokens``, HTTP 429 with ``Retry-After``
and ``x-ratelimit-*`` headers, log-normal latency, and a fault mode in which a
model answers 503 for a while. Run it as an ASGI app in-process
(``httpx.ASGITransport(app=MockProvider(...).app)``) or as a server::

    python -m mloop.gateway.testing --port 9100 --models '{"big": {"rpm": 60}}'
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import itertools
import json
import math
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from mloop._clock import Clock, SystemClock
from mloop.gateway._quota import TokenBucket

__all__ = ["MockModel", "MockProvider", "VirtualClock", "mock_tokens"]


_T = TypeVar("_T")


class VirtualClock:
    """Discrete-event time for async tests: time jumps to the next sleeper once all tasks wait.

    Unlike ``ManualClock`` (whose every ``sleep`` advances time, so concurrent
    sleepers add up), each ``sleep`` here waits until virtual time reaches its
    deadline, and ``run`` advances time only when nothing else can make progress.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._wall0 = start
        self._mono = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._wall0 + self._mono

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._seq), fut))
        await fut

    async def _settle(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(10_000):
            await asyncio.sleep(0)
            # Private, but the only way to know every ready callback has run.
            if not getattr(loop, "_ready", ()):
                for _ in range(3):
                    await asyncio.sleep(0)
                if not getattr(loop, "_ready", ()):
                    return

    async def run(self, main: Awaitable[_T]) -> _T:
        """Run ``main`` to completion, advancing virtual time whenever everything waits."""
        task = asyncio.ensure_future(main)
        while not task.done():
            await self._settle()
            if task.done():
                break
            while self._sleepers and self._sleepers[0][2].done():
                heapq.heappop(self._sleepers)
            if not self._sleepers:
                await asyncio.sleep(0.001)  # waiting on real I/O
                continue
            when, _, fut = heapq.heappop(self._sleepers)
            self._mono = max(self._mono, when)
            fut.set_result(None)
        return task.result()


@dataclass
class MockModel:
    """Limits and behaviour of one mock model (0 means unlimited)."""

    rpm: int = 0
    tpm: int = 0
    max_concurrency: int = 0
    window_s: float = 60.0
    burst_s: float = 0.0
    latency_s: float = 0.0
    latency_sigma: float = 0.0
    content: str | None = None  # the answer; "{system}" in it echoes the system prompt
    fault_until: float = 0.0


@dataclass
class _Stats:
    calls: int = 0
    ok: int = 0
    rate_limited: int = 0
    limited_by: dict[str, int] = field(default_factory=dict)
    limited_times: list[float] = field(default_factory=list)
    faults: int = 0
    inflight: int = 0
    max_inflight: int = 0
    tokens: int = 0
    ok_times: list[float] = field(default_factory=list)


def _system_text(messages: Any) -> str:
    for m in messages or ():
        if isinstance(m, Mapping) and m.get("role") == "system":
            return str(m.get("content") or "")
    return ""


def mock_tokens(messages: Any) -> int:
    """How the mock counts prompt tokens (deliberately unlike the gateway's heuristic)."""
    total = 3
    for m in messages if isinstance(messages, list) else []:
        content = m.get("content", "") if isinstance(m, Mapping) else ""
        total += 5 + len(str(content)) // 3
    return total


def _capacity(limit: int, window_s: float, burst_s: float) -> float:
    if limit <= 0:
        return 0.0
    if burst_s <= 0 or burst_s >= window_s:
        return float(limit)
    return max(1.0, limit * burst_s / window_s)


class MockProvider:
    """An OpenAI-compatible chat endpoint for named models, with limits and faults."""

    def __init__(
        self,
        models: Mapping[str, MockModel],
        *,
        clock: Clock | None = None,
        seed: int = 0,
        default_max_tokens: int = 256,
    ) -> None:
        self.models = dict(models)
        self.clock = clock or SystemClock()
        self.default_max_tokens = default_max_tokens
        self._rng = random.Random(seed)
        now = self.clock.monotonic()
        self._started = now
        self._req = {
            n: TokenBucket.full(_capacity(m.rpm, m.window_s, m.burst_s), m.rpm / m.window_s, now)
            for n, m in self.models.items()
        }
        self._tok = {
            n: TokenBucket.full(_capacity(m.tpm, m.window_s, m.burst_s), m.tpm / m.window_s, now)
            for n, m in self.models.items()
        }
        self.stats = {n: _Stats() for n in self.models}
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._list, methods=["GET"]),
                Route("/mock/stats", self._stats, methods=["GET"]),
                Route("/mock/fault", self._fault, methods=["POST"]),
            ]
        )

    def fault(self, model: str, seconds: float) -> None:
        """Make ``model`` answer 503 for the next ``seconds``."""
        self.models[model].fault_until = self.clock.monotonic() + seconds

    def _headers(self, name: str, now: float) -> dict[str, str]:
        headers: dict[str, str] = {}
        m = self.models[name]
        for kind, bucket, limit in (
            ("requests", self._req[name], m.rpm),
            ("tokens", self._tok[name], m.tpm),
        ):
            if not limit:
                continue
            bucket.refill(now)
            remaining = max(0, math.floor(bucket.level))
            reset = (bucket.capacity - bucket.level) / bucket.rate if bucket.rate else 0.0
            headers[f"x-ratelimit-limit-{kind}"] = str(limit)
            headers[f"x-ratelimit-remaining-{kind}"] = str(remaining)
            headers[f"x-ratelimit-reset-{kind}"] = f"{max(0.0, reset):.3f}s"
        return headers

    def _reject(self, name: str, message: str, wait: float, now: float, why: str) -> Response:
        self.stats[name].rate_limited += 1
        self.stats[name].limited_by[why] = self.stats[name].limited_by.get(why, 0) + 1
        self.stats[name].limited_times.append(round(now - self._started, 3))
        headers = self._headers(name, now)
        headers["retry-after"] = str(max(1, math.ceil(wait))) if wait >= 1 else f"{wait:.3f}"
        headers["retry-after-ms"] = str(max(1, int(wait * 1000)))
        body = {"error": {"message": message, "type": "requests", "code": "rate_limit_exceeded"}}
        return JSONResponse(body, status_code=429, headers=headers)

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        name = str(body.get("model", ""))
        if name not in self.models:
            err = {"error": {"message": f"model {name!r} not found", "code": "model_not_found"}}
            return JSONResponse(err, status_code=404)
        m = self.models[name]
        stats = self.stats[name]
        stats.calls += 1
        now = self.clock.monotonic()
        if now < m.fault_until:
            stats.faults += 1
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=503)
        if m.max_concurrency and stats.inflight >= m.max_concurrency:
            # Like hosted providers: a concurrency rejection hints a very short wait.
            return self._reject(name, "too many concurrent requests", 0.05, now, "concurrency")
        prompt = mock_tokens(body.get("messages"))
        max_tokens = int(body.get("max_tokens") or self.default_max_tokens)
        cost = prompt + max_tokens
        w_req = self._req[name].wait_for(1, now)
        if w_req > 0:
            return self._reject(
                name, f"Rate limit reached for requests on {name}", w_req, now, "requests"
            )
        w_tok = self._tok[name].wait_for(cost, now)
        if w_tok > 0:
            return self._reject(
                name, f"Rate limit reached for tokens on {name}", w_tok, now, "tokens"
            )
        self._req[name].take(1, now)
        self._tok[name].take(cost, now)
        headers = self._headers(name, now)
        stats.inflight += 1
        stats.max_inflight = max(stats.max_inflight, stats.inflight)
        stats.tokens += cost
        completion = max(1, int(max_tokens * (0.25 + 0.5 * self._rng.random())))
        delay = m.latency_s
        if m.latency_sigma > 0 and delay > 0:
            delay = m.latency_s * math.exp(self._rng.gauss(0.0, m.latency_sigma))
        text = " ".join(["word"] * completion) if m.content is None else m.content
        if "{system}" in text:  # lets a test give each prompt version its own answers
            text = text.replace("{system}", _system_text(body.get("messages")))
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if body.get("stream"):
            include = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                self._stream(name, text, usage if include else None, delay),
                media_type="text/event-stream",
                headers=headers,
            )
        try:
            await self.clock.sleep(delay)
        finally:
            stats.inflight -= 1
        stats.ok += 1
        stats.ok_times.append(self.clock.monotonic() - self._started)
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            },
            headers=headers,
        )

    async def _stream(
        self, name: str, text: str, usage: dict[str, int] | None, delay: float
    ) -> AsyncIterator[bytes]:
        stats = self.stats[name]
        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None, **extra: Any) -> bytes:
            data = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": name,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            return f"data: {json.dumps(data)}\n\n".encode()

        try:
            await self.clock.sleep(delay / 2)
            yield chunk({"role": "assistant", "content": ""}, None)
            words = text.split(" ")
            for i in range(0, len(words), 8):
                piece = " ".join(words[i : i + 8]) + (" " if i + 8 < len(words) else "")
                yield chunk({"content": piece}, None)
            await self.clock.sleep(delay / 2)
            yield chunk({}, "stop")
            if usage is not None:
                data = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": name,
                    "choices": [],
                    "usage": usage,
                }
                yield f"data: {json.dumps(data)}\n\n".encode()
            yield b"data: [DONE]\n\n"
            stats.ok += 1
            stats.ok_times.append(self.clock.monotonic() - self._started)
        finally:
            stats.inflight -= 1

    async def _list(self, request: Request) -> Response:
        data = [{"id": n, "object": "model", "owned_by": "mock"} for n in self.models]
        return JSONResponse({"object": "list", "data": data})

    async def _stats(self, request: Request) -> Response:
        out = {}
        for name, s in self.stats.items():
            item = asdict(s)
            if request.query_params.get("times") != "1":
                item.pop("ok_times")
            out[name] = item
        return JSONResponse(out)

    async def _fault(self, request: Request) -> Response:
        body = await request.json()
        self.fault(str(body["model"]), float(body.get("seconds", 10)))
        return JSONResponse({"ok": True})


def main(argv: list[str] | None = None) -> None:
    """Serve a mock provider: ``--models`` is JSON ``{name: {rpm, tpm, ...}}``."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--models", required=True, help="JSON: {name: {rpm, tpm, ...}}")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    spec = json.loads(args.models)
    provider = MockProvider({n: MockModel(**cfg) for n, cfg in spec.items()}, seed=args.seed)
    uvicorn.run(provider.app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()

"""What gateway tracing costs per request: ``Gateway.chat`` with tracing off and on.

    .venv/bin/python benchmarks/gateway/tracing.py [--calls 400] [--rounds 3]

In-process, sequential, against the mock provider answering at once (httpx's ASGI
transport), one deployment, 50 warm-up calls. "On" uses the OpenTelemetry SDK with a
simple processor into memory (no network export), so it measures what mloop adds:
three spans per request (request, queue, ``chat {model}``) and their attributes.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mloop.gateway import Gateway, GatewayTracer, parse_config
from mloop.gateway.testing import MockModel, MockProvider

CONFIG = {
    "deployments": [{"name": "big", "base_url": "http://mock/v1", "model": "big"}],
    "routes": {"smart": {"chain": ["big"]}},
}
BODY = {"model": "smart", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


async def median_ms(
    tracer: GatewayTracer | None, calls: int, memory: InMemorySpanExporter
) -> float:
    provider = MockProvider({"big": MockModel()})
    gw = Gateway(
        parse_config(CONFIG),
        transport=httpx.ASGITransport(app=provider.app),
        env={},
        tracer=tracer,
    )
    for _ in range(50):
        await gw.chat(BODY)
    took = []
    for _ in range(calls):
        started = time.perf_counter()
        await gw.chat(BODY)
        took.append(time.perf_counter() - started)
    await gw.aclose()
    memory.clear()
    return statistics.median(took) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sdk = TracerProvider()
    memory = InMemorySpanExporter()
    sdk.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(sdk)
    tracer = GatewayTracer(trace.get_tracer("benchmark"))
    for _ in range(args.rounds):  # interleaved, so load on the machine hits both alike
        off = asyncio.run(median_ms(None, args.calls, memory))
        on = asyncio.run(median_ms(tracer, args.calls, memory))
        print(f"p50 per request: tracing off {off:.3f} ms, on {on:.3f} ms (+{on - off:.3f} ms)")


if __name__ == "__main__":
    main()

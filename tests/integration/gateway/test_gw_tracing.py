"""OpenTelemetry spans of gateway calls: one per request, one ``chat {model}`` span per
provider call with the GenAI conventions (and only those carry ``gen_ai.*``)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mloop._clock import ManualClock
from mloop.config import load_settings
from mloop.errors import InvalidInput
from mloop.gateway import Gateway, GatewayTracer, SqlJobStore, create_app, parse_config
from mloop.gateway.testing import MockModel, MockProvider, mock_tokens

MESSAGES = [{"role": "user", "content": "hello there"}]
HELLO = {"model": "smart", "messages": MESSAGES, "max_tokens": 20, "temperature": 0.3}


def gateway(provider: MockProvider, **config: Any) -> Gateway:
    parsed = parse_config(
        {
            "deployments": [
                {"name": "big", "base_url": "http://mock:8000/v1", "model": "big"},
                {"name": "small", "base_url": "http://mock:8000/v1", "model": "small"},
            ],
            "routes": {"smart": {"chain": ["big", "small"]}},
            **config,
        }
    )
    return Gateway(
        parsed,
        transport=httpx.ASGITransport(app=provider.app),
        env={},
        tracer=GatewayTracer(trace.get_tracer("test")),
    )


def drained_big() -> MockProvider:
    """A provider whose "big" allows one request per minute, already used by someone else."""
    provider = MockProvider({"big": MockModel(rpm=1), "small": MockModel()}, clock=ManualClock())

    async def use_it() -> None:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=provider.app), base_url="http://mock"
        ) as direct:
            answer = await direct.post("/v1/chat/completions", json={**HELLO, "model": "big"})
            assert answer.is_success

    asyncio.run(use_it())
    return provider


def by_name(exporter: InMemorySpanExporter) -> dict[str, list[ReadableSpan]]:
    out: dict[str, list[ReadableSpan]] = {}
    for span in exporter.get_finished_spans():
        out.setdefault(span.name, []).append(span)
    return out


def gen_ai(span: ReadableSpan) -> dict[str, Any]:
    return {k: v for k, v in (span.attributes or {}).items() if k.startswith("gen_ai.")}


def test_a_fallback_after_a_429_is_two_chat_spans_under_one_request(
    exporter: InMemorySpanExporter,
) -> None:
    provider = drained_big()
    gw = gateway(provider)
    exporter.clear()

    async def scenario() -> Any:
        try:
            return await gw.chat(HELLO)
        finally:
            await gw.aclose()

    result = asyncio.run(scenario())
    assert result.deployment == "small" and provider.stats["big"].rate_limited == 1
    spans = by_name(exporter)
    assert set(spans) == {"mloop.gateway.request", "mloop.gateway.queue", "chat big", "chat small"}
    (request,) = spans["mloop.gateway.request"]
    (refused,) = spans["chat big"]
    (answered,) = spans["chat small"]
    assert len(spans["mloop.gateway.queue"]) == 2  # one wait per attempt
    for child in [refused, answered, *spans["mloop.gateway.queue"]]:
        assert child.parent is not None and child.parent.span_id == request.context.span_id
        assert child.context.trace_id == request.context.trace_id

    assert request.attributes is not None
    assert request.attributes["mloop.route"] == "smart"
    assert request.attributes["mloop.priority"] == "interactive"
    assert request.attributes["mloop.outcome"] == "ok"
    assert request.attributes["mloop.deployment"] == "small"
    assert request.attributes["mloop.attempts"] == 2
    assert request.status.status_code == trace.StatusCode.UNSET

    assert refused.kind == trace.SpanKind.CLIENT
    assert refused.status.status_code == trace.StatusCode.ERROR
    assert refused.attributes is not None and refused.attributes["error.type"] == "429"
    assert refused.attributes["http.response.status_code"] == 429
    assert gen_ai(refused) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "big",
        "gen_ai.request.max_tokens": 20,
        "gen_ai.request.temperature": 0.3,
    }

    usage = result.response["usage"]
    assert gen_ai(answered) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "small",
        "gen_ai.request.max_tokens": 20,
        "gen_ai.request.temperature": 0.3,
        "gen_ai.response.model": "small",
        "gen_ai.response.id": result.response["id"],
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": mock_tokens(MESSAGES),
        "gen_ai.usage.output_tokens": usage["completion_tokens"],
    }
    assert answered.attributes is not None
    assert answered.attributes["server.address"] == "mock"
    assert answered.attributes["server.port"] == 8000
    assert answered.attributes["mloop.deployment"] == "small"
    assert "error.type" not in answered.attributes
    # gen_ai.* only on the provider calls: not on the request, queue or cache spans.
    assert not gen_ai(request)
    assert not any(gen_ai(s) for s in spans["mloop.gateway.queue"])


def test_a_cache_hit_is_a_request_and_a_cache_span_with_no_provider_call(
    exporter: InMemorySpanExporter,
) -> None:
    provider = MockProvider({"big": MockModel(), "small": MockModel()})
    gw = gateway(provider, cache={"backend": "memory"})
    body = {**HELLO, "temperature": 0}

    async def scenario() -> None:
        await gw.chat(body)
        exporter.clear()
        assert (await gw.chat(body)).cached
        await gw.aclose()

    asyncio.run(scenario())
    spans = by_name(exporter)
    assert set(spans) == {"mloop.gateway.request", "mloop.gateway.cache"}
    (request,) = spans["mloop.gateway.request"]
    assert request.attributes is not None and request.attributes["mloop.cache"] == "hit"
    assert request.attributes["mloop.attempts"] == 0
    assert not gen_ai(request) and not gen_ai(spans["mloop.gateway.cache"][0])
    assert provider.stats["big"].calls == 1


def test_a_stream_ends_its_spans_when_its_last_chunk_is_out(
    exporter: InMemorySpanExporter,
) -> None:
    provider = MockProvider({"big": MockModel(content="one two three"), "small": MockModel()})
    gw = gateway(provider)
    exporter.clear()

    async def scenario() -> list[Any]:
        started = await gw.stream({**HELLO, "stream": True})
        assert set(by_name(exporter)) == {"mloop.gateway.queue"}  # the call is still open
        chunks = [c async for c in started.chunks]
        await gw.aclose()
        return chunks

    chunks = asyncio.run(scenario())
    assert chunks
    spans = by_name(exporter)
    (call,) = spans["chat big"]
    (request,) = spans["mloop.gateway.request"]
    assert request.attributes is not None and request.attributes["mloop.stream"] is True
    assert request.attributes["mloop.outcome"] == "ok"
    assert gen_ai(call)["gen_ai.response.model"] == "big"
    assert gen_ai(call)["gen_ai.response.finish_reasons"] == ("stop",)
    assert call.end_time is not None and request.end_time is not None
    assert call.end_time <= request.end_time


def test_a_refused_request_is_an_error_span_without_provider_calls(
    exporter: InMemorySpanExporter,
) -> None:
    gw = gateway(MockProvider({"big": MockModel(), "small": MockModel()}))
    exporter.clear()

    async def scenario() -> None:
        with pytest.raises(InvalidInput):
            await gw.chat({**HELLO, "max_tokens": -1})
        await gw.aclose()

    asyncio.run(scenario())
    (request,) = exporter.get_finished_spans()
    assert request.name == "mloop.gateway.request"
    assert request.status.status_code == trace.StatusCode.ERROR
    assert request.attributes is not None and request.attributes["mloop.outcome"] == "error"
    assert request.attributes["error.type"] == "InvalidInput"


def test_gateway_traces_setting_turns_tracing_on(tmp_path: Path) -> None:
    settings = load_settings(env={}, config_file=None, home=tmp_path)
    config = parse_config(
        {
            "deployments": [{"name": "big", "base_url": "http://mock/v1", "model": "big"}],
            "routes": {"smart": {"chain": ["big"]}},
        }
    )
    jobs = SqlJobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    off = create_app(config, settings, job_store=jobs, auth=False)
    on_settings = replace(settings, gateway=replace(settings.gateway, traces=True))
    on = create_app(config, on_settings, job_store=jobs, auth=False)
    assert off.state.gateway.tracer is None
    assert isinstance(on.state.gateway.tracer, GatewayTracer)


def test_with_traces_off_no_sdk_or_exporter_is_loaded(tmp_path: Path) -> None:
    code = (
        "import sys, httpx; from mloop.config import load_settings;"
        "from mloop.gateway import create_app, parse_config, SqlJobStore;"
        "from mloop.gateway.testing import MockModel, MockProvider;"
        "cfg = parse_config({'deployments': [{'name': 'big', 'base_url': 'http://m/v1',"
        " 'model': 'big'}], 'routes': {'smart': {'chain': ['big']}}});"
        f"s = load_settings(env={{}}, config_file=None, home={str(tmp_path)!r});"
        f"jobs = SqlJobStore('sqlite:///{tmp_path}/jobs.db');"
        "app = create_app(cfg, s, job_store=jobs, auth=False,"
        " transport=httpx.ASGITransport(app=MockProvider({'big': MockModel()}).app));"
        "from fastapi.testclient import TestClient;"
        "body = {'model': 'smart', 'messages': [{'role': 'user', 'content': 'hi'}]};"
        "c = TestClient(app).__enter__();"
        "assert c.post('/v1/chat/completions', json=body).status_code == 200;"
        "loaded = [m for m in sys.modules if m.startswith(('opentelemetry.sdk', 'opentelemetry.exporter'))];"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_http_app_continues_the_callers_trace(
    exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    provider = MockProvider({"big": MockModel(), "small": MockModel()})
    gw = gateway(provider)
    app = create_app(
        gw.config,
        gateway=gw,
        job_store=SqlJobStore(f"sqlite:///{tmp_path / 'jobs.db'}"),
        auth=False,
    )
    exporter.clear()

    async def scenario() -> int:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http,
        ):
            answer = await http.post(
                "/v1/chat/completions",
                json=HELLO,
                headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
            )
            return answer.status_code

    assert asyncio.run(scenario()) == 200
    (request,) = by_name(exporter)["mloop.gateway.request"]
    assert f"{request.context.trace_id:032x}" == trace_id
    assert request.parent is not None and f"{request.parent.span_id:016x}" == "00f067aa0ba902b7"
    (call,) = by_name(exporter)["chat big"]
    assert call.context.trace_id == request.context.trace_id

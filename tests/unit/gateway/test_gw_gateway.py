"""The gateway end to end in-process: fallback, 429 drift, templates, schemas, errors.

The mock provider and the gateway share one ``VirtualClock``: provider latency and
the scheduler's waits advance it, so nothing here sleeps for real.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from gw_helpers import chat, make_config

from mloop.errors import ConfigurationError, InvalidInput, Overloaded
from mloop.gateway import Client, Gateway, GatewayConfig
from mloop.gateway.testing import MockModel, MockProvider, VirtualClock


def vrun(gw: Gateway, coro: Any) -> Any:
    """Run ``coro`` under the gateway's virtual clock."""
    clock = gw.clock
    assert isinstance(clock, VirtualClock)
    return asyncio.run(clock.run(coro))


def setup(
    models: dict[str, MockModel], config: GatewayConfig
) -> tuple[Gateway, MockProvider, VirtualClock]:
    clock = VirtualClock()
    provider = MockProvider(models, clock=clock)
    gw = Gateway(config, transport=httpx.ASGITransport(app=provider.app), clock=clock, env={})
    return gw, provider, clock


async def burst(gw: Gateway, n: int, **kw: Any) -> list[Any]:
    calls = [gw.chat(chat(f"question {i}", max_tokens=20), **kw) for i in range(n)]
    out = await asyncio.gather(*calls, return_exceptions=True)
    await gw.aclose()
    return out


def test_failing_primary_is_skipped_and_no_request_fails() -> None:
    config = make_config(
        [{"name": "big", "max_concurrency": 2}, {"name": "small", "max_concurrency": 4}]
    )
    gw, provider, _ = setup(
        {"big": MockModel(latency_s=0.2), "small": MockModel(latency_s=0.1)}, config
    )
    provider.fault("big", 60)
    results = vrun(gw, burst(gw, 30))
    assert all(r.deployment == "small" for r in results)
    # The breaker opened after a few failures instead of trying big for every request.
    assert provider.stats["big"].calls <= 5
    assert gw.breakers["big"].opened_at is not None


def test_headers_confirmed_by_a_429_teach_the_real_quota() -> None:
    # The gateway believes big allows 6,000 RPM; the provider allows a burst of one per second.
    # A header alone does not say its window, so it may not rescale the configured rate; the
    # first wave's 429s (Retry-After 1 s for one request) confirm "60 per minute", and from
    # then on the gateway keeps the provider's pace without another 429.
    config = make_config([{"name": "big", "rpm": 6000}])
    gw, provider, clock = setup({"big": MockModel(rpm=60, burst_s=1, latency_s=0.05)}, config)

    async def scenario() -> list[Any]:
        await gw.chat(chat())
        return await burst(gw, 20)

    results = vrun(gw, scenario())
    assert all(r.deployment == "big" for r in results)
    stats = provider.stats["big"]
    assert stats.ok == 21
    assert stats.rate_limited <= 4 and len(set(stats.limited_times)) == 1  # one wave only
    assert clock.monotonic() >= 19  # paced at the provider's one request per second


@pytest.mark.parametrize(
    ("provider", "convention"),
    [
        (MockModel(rpm=30, window_s=6, latency_s=0.05), "30 per 6 s window"),
        (MockModel(rpm=432_000, window_s=86_400, burst_s=6, latency_s=0.05), "per day"),
    ],
    ids=["six-second-window", "per-day-limit"],
)
def test_a_provider_whose_headers_count_another_window_gets_the_configured_pace(
    provider: MockModel, convention: str
) -> None:
    # The operator configured the true limit: 5 requests per second, bursts of 30.
    config = make_config([{"name": "big", "rpm": 300, "burst_s": 6}])
    gw, mock, clock = setup({"big": provider}, config)
    results = vrun(gw, burst(gw, 100))
    assert all(r.deployment == "big" for r in results), convention
    # Optimum: 30 at once, then 70 at 5 per second = 14 s (plus latency). The old reading
    # of the header as per-minute paced a six-second provider at a tenth of that.
    assert clock.monotonic() <= 14 * 1.15 + 1, convention
    assert mock.stats["big"].rate_limited <= 3, convention


def test_a_429_is_drift_the_call_waits_and_succeeds() -> None:
    config = make_config([{"name": "big", "rpm": 6000}])
    gw, provider, _clock = setup({"big": MockModel(rpm=60, burst_s=1, latency_s=0.05)}, config)
    results = vrun(gw, burst(gw, 5))
    # The first wave went out on the wrong belief; every call still succeeded.
    assert all(r.deployment == "big" for r in results)
    assert provider.stats["big"].rate_limited <= 4
    assert provider.stats["big"].ok == 5


def test_fallback_swaps_in_the_smaller_models_template() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        if body["model"] == "big":
            return httpx.Response(503, json={"error": {"message": "down"}})
        reply = {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
        }
        return httpx.Response(200, json=reply)

    routes = {
        "smart": {
            "chain": ["big", "small"],
            "templates": {
                "small": {
                    "version": "small-v3",
                    "system": "Answer in one word.",
                    "few_shot": [
                        {"role": "user", "content": "Capital of France?"},
                        {"role": "assistant", "content": "Paris"},
                    ],
                    "user": "Question: {content}",
                }
            },
        }
    }
    config = make_config([{"name": "big"}, {"name": "small"}], routes)
    gw = Gateway(config, transport=httpx.MockTransport(handler), clock=VirtualClock(), env={})
    body = {
        "model": "smart",
        "messages": [
            {"role": "system", "content": "Be verbose."},
            {"role": "user", "content": "Capital of Peru?"},
        ],
    }
    result = vrun(gw, _one(gw, body))
    assert result.deployment == "small" and result.template_version == "small-v3"
    assert seen[0]["messages"] == body["messages"]  # the primary got the prompt untouched
    assert seen[-1]["messages"] == [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris"},
        {"role": "user", "content": "Question: Capital of Peru?"},
    ]


async def _one(gw: Gateway, body: dict[str, Any], **kw: Any) -> Any:
    try:
        return await gw.chat(body, **kw)
    finally:
        await gw.aclose()


def test_output_failing_the_route_schema_goes_to_the_next_deployment() -> None:
    schema = {
        "type": "object",
        "required": ["answer"],
        "properties": {"answer": {"type": "string"}},
    }
    routes = {"smart": {"chain": ["big", "small"], "output_schema": schema}}
    config = make_config([{"name": "big"}, {"name": "small"}], routes)
    gw, _provider, _ = setup(
        {
            "big": MockModel(content="Sure! The answer is 4."),
            "small": MockModel(content='{"answer": "4"}'),
        },
        config,
    )
    result = vrun(gw, _one(gw, chat("2+2?")))
    assert result.deployment == "small"
    assert json.loads(result.response["choices"][0]["message"]["content"]) == {"answer": "4"}


def handler_status(status: int) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": {"message": f"status {status}"}})

    return handler


def test_bad_request_is_the_callers_to_fix_and_not_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(400, json={"error": {"message": "max_tokens too large"}})

    config = make_config([{"name": "big"}, {"name": "small"}])
    gw = Gateway(config, transport=httpx.MockTransport(handler), clock=VirtualClock(), env={})
    with pytest.raises(InvalidInput, match="max_tokens too large"):
        vrun(gw, _one(gw, chat()))
    assert len(calls) == 1


def test_rejected_api_key_is_an_operator_error_naming_the_variable() -> None:
    config = make_config([{"name": "big", "api_key_env": "BIG_KEY"}])
    gw = Gateway(
        config,
        transport=httpx.MockTransport(handler_status(401)),
        clock=VirtualClock(),
        env={"BIG_KEY": "sk-wrong"},
    )
    with pytest.raises(ConfigurationError, match=r"\$BIG_KEY"):
        vrun(gw, _one(gw, chat()))


def test_unknown_route_lists_the_known_ones() -> None:
    config = make_config([{"name": "big"}])
    gw = Gateway(
        config, transport=httpx.MockTransport(handler_status(200)), clock=VirtualClock(), env={}
    )
    with pytest.raises(Exception, match=r"routes \['smart'\]"):
        vrun(gw, _one(gw, chat(route="clever")))


def test_request_that_outlives_its_deadline_in_the_queue_gets_429() -> None:
    config = make_config([{"name": "big", "rpm": 60, "burst_s": 1}])
    gw, _, _ = setup({"big": MockModel(rpm=60, burst_s=1, latency_s=0.05)}, config)

    async def scenario() -> list[Any]:
        first = [gw.chat(chat(), priority="batch") for _ in range(5)]
        late = gw.chat(chat(), deadline_s=30)
        tight = gw.chat(chat(), deadline_s=0.5)
        out = await asyncio.gather(*first, late, tight, return_exceptions=True)
        await gw.aclose()
        return out

    results = vrun(gw, scenario())
    assert isinstance(results[-1], Overloaded) and results[-1].headers()["Retry-After"]
    assert not isinstance(results[-2], Exception)


def test_token_estimates_learn_the_providers_tokenizer() -> None:
    config = make_config([{"name": "big"}])
    gw, _, _ = setup({"big": MockModel()}, config)
    vrun(gw, _one(gw, chat("a fairly long question " * 40, max_tokens=10)))
    # The mock counts ~3 chars per token, the heuristic 4: the ratio moves above 1.
    assert gw._token_ratio["big"] > 1.0


def test_streaming_returns_chunks_and_releases_the_slot() -> None:
    config = make_config([{"name": "big", "max_concurrency": 1}])
    gw, _provider, _ = setup({"big": MockModel(content="one two three")}, config)

    async def scenario() -> str:
        parts = []
        for _ in range(2):  # the second stream would hang if the slot leaked
            started = await gw.stream(chat())
            async for chunk in started.chunks:
                for choice in chunk["choices"]:
                    parts.append(choice["delta"].get("content") or "")
        await gw.aclose()
        return "".join(parts)

    assert vrun(gw, scenario()) == "one two threeone two three"


def test_metrics_count_calls_fallbacks_and_cost() -> None:
    config = make_config(
        [{"name": "big"}, {"name": "small", "input_cost_per_1k": 1.0, "output_cost_per_1k": 2.0}]
    )
    gw, provider, _ = setup({"big": MockModel(), "small": MockModel()}, config)
    provider.fault("big", 60)
    vrun(gw, burst(gw, 3))
    text = gw.metrics.render().decode()
    assert 'mloop_gateway_fallbacks_total{deployment="small",route="smart"} 3.0' in text
    assert 'mloop_gateway_calls_total{deployment="big",outcome="transient"}' in text
    assert 'mloop_gateway_cost_total{deployment="small"}' in text


def test_client_in_process_has_the_same_behaviour() -> None:
    clock = VirtualClock()
    provider = MockProvider({"big": MockModel(), "small": MockModel()}, clock=clock)
    provider.fault("big", 60)
    config = make_config([{"name": "big"}, {"name": "small"}])

    async def scenario() -> tuple[str, str]:
        async with Client(
            config, transport=httpx.ASGITransport(app=provider.app), clock=clock, env={}
        ) as client:
            result = await client.chat(
                "smart", [{"role": "user", "content": "hi"}], max_tokens=5, priority="batch"
            )
            text = ""
            async for chunk in client.stream("smart", [{"role": "user", "content": "hi"}]):
                text += "".join(c["delta"].get("content") or "" for c in chunk["choices"])
            return result.deployment, text

    deployment, text = asyncio.run(clock.run(scenario()))
    assert deployment == "small" and text


def test_a_caller_that_goes_away_mid_call_gives_its_slot_back() -> None:
    config = make_config([{"name": "big", "max_concurrency": 1}])
    gw, provider, _ = setup({"big": MockModel(latency_s=5.0)}, config)

    async def scenario() -> str:
        first = asyncio.ensure_future(gw.chat(chat()))
        while provider.stats["big"].inflight == 0:
            await asyncio.sleep(0)
        first.cancel()
        # With the slot leaked, this second call would wait forever.
        result = await gw.chat(chat())
        await gw.aclose()
        return result.deployment

    assert vrun(gw, scenario()) == "big"

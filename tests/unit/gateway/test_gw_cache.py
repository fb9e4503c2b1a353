"""The exact response cache: deterministic requests answer once, per key, within the TTL,
and a hit costs no quota and no budget."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from gw_helpers import chat, make_config

from mloop._clock import ManualClock
from mloop.auth import KeyLimits, Limits
from mloop.errors import Forbidden, InvalidInput, Overloaded
from mloop.gateway import Gateway, MemoryLedger
from mloop.gateway._cache import MemoryCache, cache_key, cacheable
from mloop.gateway._spending import Spending
from mloop.gateway.testing import MockModel, MockProvider


def setup(**deployment: Any) -> tuple[Gateway, MockProvider, ManualClock]:
    clock = ManualClock()
    provider = MockProvider({"big": MockModel()}, seed=1)
    config = make_config(
        [{"name": "big", "input_cost_per_1k": 1.0, "output_cost_per_1k": 1.0, **deployment}]
    )
    gw = Gateway(
        config,
        transport=httpx.ASGITransport(app=provider.app),
        cache=MemoryCache(ttl_s=60, clock=clock),
        env={},
    )
    return gw, provider, clock


def calls(provider: MockProvider) -> int:
    return provider.stats["big"].calls


def test_only_deterministic_or_opted_in_requests_are_cached() -> None:
    assert cacheable(chat(temperature=0))
    assert cacheable(chat(temperature=0.0))
    assert cacheable(chat(temperature=0.9, cache=True))
    assert not cacheable(chat())  # the provider's default temperature is not 0
    assert not cacheable(chat(temperature=0.7))
    assert not cacheable(chat(temperature=0, cache=False))
    assert not cacheable(chat(temperature=0, n=3))


def test_the_key_covers_route_deployment_template_caller_and_request() -> None:
    base = cache_key("smart", "big", "1", "k1", chat(temperature=0))
    assert base == cache_key("smart", "big", "1", "k1", {**chat(temperature=0), "stream": False})
    assert base == cache_key("smart", "big", "1", "k1", dict(reversed(chat(temperature=0).items())))
    others = [
        cache_key("other", "big", "1", "k1", chat(temperature=0)),
        cache_key("smart", "small", "1", "k1", chat(temperature=0)),
        cache_key("smart", "big", "2", "k1", chat(temperature=0)),
        cache_key("smart", "big", "1", "k2", chat(temperature=0)),
        cache_key("smart", "big", "1", "k1", chat("bye", temperature=0)),
        cache_key("smart", "big", "1", "k1", chat(temperature=0, max_tokens=9)),
    ]
    assert base not in others and len(set(others)) == len(others)


def test_a_repeated_request_answers_from_the_cache_until_the_ttl_passes() -> None:
    gw, provider, clock = setup()

    async def scenario() -> list[Any]:
        first = await gw.chat(chat(temperature=0), caller="k1")
        second = await gw.chat(chat(temperature=0), caller="k1")
        other_key = await gw.chat(chat(temperature=0), caller="k2")
        clock.advance(61)
        expired = await gw.chat(chat(temperature=0), caller="k1")
        await gw.aclose()
        return [first, second, other_key, expired]

    first, second, other_key, expired = asyncio.run(scenario())
    assert second.response == first.response
    assert (first.cached, second.cached, other_key.cached, expired.cached) == (
        False,
        True,
        False,
        False,
    )
    assert second.headers()["x-mloop-cache"] == "hit"
    assert calls(provider) == 3  # one key never sees another's answer


def test_a_hit_costs_no_quota_and_no_budget() -> None:
    gw, provider, clock = setup(rpm=1)  # one request a minute at the provider

    class OneRequestBudget:
        def for_key(self, key_id: str) -> KeyLimits:
            return KeyLimits(key_id, Limits(rpm=1))

    gw.spending = Spending(OneRequestBudget(), MemoryLedger(), gw.metrics, clock=clock)

    async def scenario() -> tuple[list[Any], BaseException | None]:
        answers = [await gw.chat(chat(temperature=0), caller="k1") for _ in range(5)]
        try:
            await gw.chat(chat("new question", temperature=0), caller="k1")
            error = None
        except Overloaded as exc:
            error = exc
        await gw.aclose()
        return answers, error

    answers, error = asyncio.run(scenario())
    assert [a.cached for a in answers] == [False, True, True, True, True]
    assert calls(provider) == 1
    assert error is not None and error.code == "budget_exceeded"  # the cap still holds


def test_cache_flag_must_be_a_boolean_and_never_reaches_the_provider() -> None:
    seen: list[dict[str, Any]] = []

    def provider(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        answer = {"role": "assistant", "content": "ok"}
        return httpx.Response(200, json={"choices": [{"index": 0, "message": answer}]})

    config = make_config([{"name": "big"}])
    gw = Gateway(config, transport=httpx.MockTransport(provider), cache=MemoryCache(), env={})

    async def scenario() -> None:
        await gw.chat(chat(cache=True))
        with pytest.raises(InvalidInput, match="cache"):
            await gw.chat(chat(cache="yes"))
        await gw.aclose()

    asyncio.run(scenario())
    assert len(seen) == 1 and "cache" not in seen[0]


def test_a_key_that_lost_a_route_gets_no_cached_answer_from_it() -> None:
    gw, provider, clock = setup()

    class Switchable:
        routes: tuple[str, ...] = ()

        def for_key(self, key_id: str) -> KeyLimits:
            return KeyLimits(key_id, Limits(routes=self.routes))

    limits = Switchable()
    gw.spending = Spending(limits, MemoryLedger(), gw.metrics, clock=clock)

    async def scenario() -> None:
        await gw.chat(chat(temperature=0), caller="k1")
        limits.routes = ("other",)
        with pytest.raises(Forbidden, match="routes \\['other'\\]"):
            await gw.chat(chat(temperature=0), caller="k1")
        await gw.aclose()

    asyncio.run(scenario())
    assert calls(provider) == 1

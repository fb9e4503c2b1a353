"""The response cache in the real Redis: an answer one replica got is a hit on another."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from mloop.gateway import Gateway, parse_config
from mloop.gateway.testing import MockModel, MockProvider

pytestmark = pytest.mark.redis


def config(redis_url: str, ttl_s: float = 60) -> Any:
    return parse_config(
        {
            "deployments": [{"name": "big", "base_url": "http://mock/v1", "model": "big"}],
            "routes": {"smart": {"chain": ["big"]}},
            "scheduler": {"redis_url": redis_url, "key_prefix": f"mloop:test:{uuid.uuid4().hex}:"},
            "cache": {"backend": "redis", "ttl_s": ttl_s},
        }
    )


def test_two_replicas_share_cached_answers_per_key(redis_url: str) -> None:
    provider = MockProvider({"big": MockModel()})
    cfg = config(redis_url)
    body = {"model": "smart", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}

    async def scenario() -> list[Any]:
        replicas = [
            Gateway(cfg, transport=httpx.ASGITransport(app=provider.app), env={}) for _ in range(2)
        ]
        first = await replicas[0].chat(body, caller="k1")
        again = await replicas[1].chat(body, caller="k1")
        other = await replicas[1].chat(body, caller="k2")
        for gw in replicas:
            await gw.aclose()
        return [first, again, other]

    first, again, other = asyncio.run(scenario())
    assert again.cached and again.response == first.response
    assert not other.cached
    assert provider.stats["big"].calls == 2

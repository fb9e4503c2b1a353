"""Spending: capped rows settle with each request; report tallies are summed and flushed."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx
from gw_helpers import chat, make_config

from mloop._clock import ManualClock
from mloop.auth import KeyLimits, Limits
from mloop.gateway import Gateway, MemoryLedger
from mloop.gateway._budget import Charge
from mloop.gateway._spending import Spending
from mloop.gateway.testing import MockModel, MockProvider


class CountingLedger(MemoryLedger):
    def __init__(self) -> None:
        super().__init__()
        self.settles = 0

    async def settle(
        self, hold_ids: Sequence[str], charges: Sequence[Charge], used: Sequence[int]
    ) -> None:
        self.settles += 1
        await super().settle(hold_ids, charges, used)


class Limited:
    def for_key(self, key_id: str) -> KeyLimits | None:
        return KeyLimits(key_id, Limits(budgets_usd={"day": 10.0})) if key_id == "paid" else None


def test_unbudgeted_keys_cost_no_ledger_write_per_request_and_tallies_add_up() -> None:
    clock = ManualClock()
    provider = MockProvider({"big": MockModel()})
    config = make_config([{"name": "big", "input_cost_per_1k": 1.0, "output_cost_per_1k": 2.0}])
    gw = Gateway(config, transport=httpx.ASGITransport(app=provider.app), env={})
    ledger = CountingLedger()
    gw.spending = Spending(Limited(), ledger, gw.metrics, clock=clock, flush_every_s=1.0)

    async def scenario() -> tuple[int, int, list[Any]]:
        for _ in range(10):
            await gw.chat(chat(max_tokens=20), caller="free")
        before = ledger.settles
        await gw.chat(chat(max_tokens=20), caller="paid")  # a budgeted key settles at once
        after_paid = ledger.settles
        clock.advance(1.5)
        await gw.chat(chat(max_tokens=20), caller="free")  # due: one flush of everything
        rows = await ledger.rows(period="day")
        await gw.aclose()
        return before, after_paid, rows

    before, after_paid, rows = asyncio.run(scenario())
    assert before == 0 and after_paid == 1
    by_subject = {r.subject: r.spent for r in rows}
    assert by_subject["route:smart"] == by_subject["key:free"] + by_subject["key:paid"]
    assert by_subject["deployment:big"] == by_subject["route:smart"] > 0


def test_a_budgeted_stream_settles_on_the_providers_own_usage() -> None:
    provider = MockProvider({"big": MockModel()})
    config = make_config([{"name": "big", "input_cost_per_1k": 1.0, "output_cost_per_1k": 2.0}])
    gw = Gateway(config, transport=httpx.ASGITransport(app=provider.app), env={})
    ledger = MemoryLedger()
    gw.spending = Spending(Limited(), ledger, gw.metrics)

    async def scenario() -> tuple[dict[str, int], list[Any]]:
        started = await gw.stream(chat(max_tokens=30), caller="paid")
        usage: dict[str, int] = {}
        async for chunk in started.chunks:
            usage = chunk.get("usage") or usage
        rows = await ledger.rows(period="day")
        await gw.aclose()
        return usage, rows

    usage, rows = asyncio.run(scenario())
    assert usage  # the gateway asked the provider for it (stream_options.include_usage)
    cost = (usage["prompt_tokens"] * 1.0 + usage["completion_tokens"] * 2.0) / 1000
    key = next(r for r in rows if r.subject == "key:paid" and r.metric == "usd")
    assert key.spent == round(cost * 1_000_000) and key.reserved == 0

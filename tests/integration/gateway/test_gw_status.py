"""``GET /v1/status``: the gateway's state as plain data, the same numbers ``/metrics`` has."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from mloop._clock import ManualClock
from mloop.auth import KeyStore, Limits, LimitStore
from mloop.config import load_settings
from mloop.gateway import SqlJobStore, create_app, parse_config
from mloop.gateway.testing import MockModel, MockProvider
from mloop.store import MetadataStore

CONFIG = {
    "deployments": [
        {
            "name": "big",
            "base_url": "http://mock/v1",
            "model": "big",
            "rpm": 6,  # refills one request per 10 s: the test is done long before
            "tpm": 100_000,
            "max_concurrency": 4,
            "input_cost_per_1k": 1.0,
            "output_cost_per_1k": 2.0,
        },
        {
            "name": "small",
            "base_url": "http://mock/v1",
            "model": "small",
            "input_cost_per_1k": 0.5,
            "output_cost_per_1k": 1.0,
        },
    ],
    "routes": {"smart": {"chain": ["big", "small"]}},
    "budgets": {"ledger": "sql"},
}
HELLO = {"model": "smart", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 20}


def test_status_reports_quota_429s_fallbacks_jobs_and_spend(tmp_path: Path) -> None:
    settings = load_settings(env={}, config_file=None, home=tmp_path / "home")
    store = MetadataStore.from_settings(settings)
    keys = KeyStore(store)
    _, admin = keys.create("ops", ["admin"])
    bot, token = keys.create("bot", ["gateway"])
    LimitStore(store).set_team("search", Limits(budgets_usd={"week": 50.0}))
    LimitStore(store).set_key(bot.key_id, Limits(budgets_usd={"day": 10.0}), team="search")
    # The provider's clock stands still: "big" allows one request, and never refills.
    provider = MockProvider(
        {"big": MockModel(rpm=1), "small": MockModel()}, clock=ManualClock(), seed=1
    )
    app = create_app(
        parse_config(CONFIG),
        settings,
        job_store=SqlJobStore(f"sqlite:///{tmp_path / 'jobs.db'}"),
        transport=httpx.ASGITransport(app=provider.app),
        auth=True,
    )
    as_bot = {"authorization": f"Bearer {token}"}
    as_admin = {"authorization": f"Bearer {admin}"}

    async def scenario() -> tuple[list[httpx.Response], dict[str, Any], str]:
        # Someone else uses "big"'s only request: the gateway's call there gets a 429.
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=provider.app), base_url="http://mock"
        ) as direct:
            assert (
                await direct.post("/v1/chat/completions", json={**HELLO, "model": "big"})
            ).is_success
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http,
        ):
            answered = await http.post("/v1/chat/completions", json=HELLO, headers=as_bot)
            job = (await http.post("/v1/jobs", json=HELLO, headers=as_bot)).json()
            for _ in range(500):  # the job runs in the app's background
                if (await http.get(f"/v1/jobs/{job['id']}", headers=as_bot)).json()[
                    "status"
                ] == "succeeded":
                    break
                await asyncio.sleep(0.01)
            refused = await http.get("/v1/status", headers=as_bot)
            status = await http.get("/v1/status", headers=as_admin)
            metrics = await http.get("/metrics", headers=as_admin)
            return [answered, refused, status], status.json(), metrics.text

    (answered, refused, ok), status, metrics = asyncio.run(scenario())
    assert answered.status_code == 200 and answered.headers["x-mloop-deployment"] == "small"
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "user_fixable"
    assert ok.status_code == 200

    big, small = status["deployments"]
    assert big["name"] == "big" and big["rpm"] == 6 and big["breaker"] == "closed"
    assert big["provider_429"] == 1 and big["calls"] == {
        "ok": 0,
        "rate_limited": 1,
        "transient": 0,
        "deployment": 0,
        "user": 0,
    }
    assert big["quota"]["requests_remaining"] < 1  # the 429 emptied it; refilling since
    assert big["quota"]["inflight"] == 0 and big["quota"]["max_concurrency"] == 4
    assert big["quota"]["blocked_for_s"] > 0
    assert small["provider_429"] == 0 and small["calls"]["ok"] == 2
    assert small["fallbacks"] == 2 and small["quota"]["request_capacity"] == 0  # unlimited
    assert status["fallbacks"] == [{"route": "smart", "deployment": "small", "count": 2}]
    assert status["queue"] == {"interactive": 0, "batch": 0}
    assert status["requests"] == [{"route": "smart", "ok": 2, "error": 0, "refused": 0}]
    assert status["jobs"] == {"queued": 0, "running": 0, "succeeded": 1, "failed": 0}

    day = {(r["subject"], r["metric"]): r for r in status["spend"]["day"]}
    key_usd = day[(f"key:{bot.key_id}", "usd")]
    assert key_usd["cap"] == 10.0 and key_usd["spent"] > 0 and key_usd["held"] == 0
    assert day[("route:smart", "usd")]["spent"] == key_usd["spent"]
    assert day[("deployment:small", "usd")]["spent"] == key_usd["spent"]
    week = {(r["subject"], r["metric"]): r for r in status["spend"]["week"]}
    assert week[("team:search", "usd")]["cap"] == 50.0
    assert week[("team:search", "usd")]["spent"] == key_usd["spent"]

    # One computation: /metrics shows the very same counts.
    assert 'mloop_gateway_provider_429_total{deployment="big"} 1.0' in metrics
    assert 'mloop_gateway_fallbacks_total{deployment="small",route="smart"} 2.0' in metrics


def test_status_without_keys_or_budgets_has_no_spend(tmp_path: Path) -> None:
    provider = MockProvider({"big": MockModel(), "small": MockModel()})
    app = create_app(
        parse_config(CONFIG),
        job_store=SqlJobStore(f"sqlite:///{tmp_path / 'jobs.db'}"),
        transport=httpx.ASGITransport(app=provider.app),
        auth=False,
    )

    async def scenario() -> dict[str, Any]:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http,
        ):
            assert (await http.post("/v1/chat/completions", json=HELLO)).is_success
            return (await http.get("/v1/status")).json()

    status = asyncio.run(scenario())
    assert status["spend"] is None
    assert status["deployments"][0]["calls"]["ok"] == 1
    assert 5 <= status["deployments"][0]["quota"]["requests_remaining"] < 6  # one used
    assert status["fallbacks"] == [] and status["jobs"]["succeeded"] == 0


def test_status_still_answers_when_the_spend_ledger_is_down() -> None:
    from mloop.gateway import Gateway, MemoryLedger, gateway_status
    from mloop.gateway._spending import Spending

    class Down(MemoryLedger):
        async def rows(self, period: str | None = None, at: float | None = None) -> Any:
            raise ConnectionError("ledger unreachable")

    class NoLimits:
        def for_key(self, key_id: str) -> None:
            return None

    gw = Gateway(parse_config(CONFIG), env={})
    gw.spending = Spending(NoLimits(), Down(), gw.metrics)

    async def scenario() -> dict[str, Any]:
        try:
            return await gateway_status(gw)
        finally:
            await gw.aclose()

    status = asyncio.run(scenario())
    assert status["spend"] == {
        "error": "The spend ledger could not be read: ConnectionError('ledger unreachable')."
    }
    assert status["jobs"] is None and len(status["deployments"]) == 2

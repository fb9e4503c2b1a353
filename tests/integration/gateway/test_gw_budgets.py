"""Keys' budgets under concurrency: 64 requests on two gateway replicas sharing one ledger
(SQLite, real PostgreSQL, real Redis) never overspend and never refuse what fits."""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mloop._clock import ManualClock
from mloop.auth import KeyStore, Limits, LimitStore
from mloop.config import Settings, load_settings
from mloop.gateway import Gateway, GatewayConfig, SqlJobStore, create_app, parse_config
from mloop.gateway._budget import Charge, window
from mloop.gateway._ledger import Exceeded, Ledger, MemoryLedger, SqlLedger
from mloop.gateway._redis_ledger import RedisLedger
from mloop.gateway._spending import Spending
from mloop.gateway.testing import MockModel, MockProvider
from mloop.store import MetadataStore

IN_PER_1K, OUT_PER_1K = 0.5, 1.5
MAX_TOKENS = 50
# The prompt bound of one {"role": "user", "content": "hello"}: 3 + 8 + 5 bytes.
MAX_COST_MICRO = math.ceil((16 * IN_PER_1K + MAX_TOKENS * OUT_PER_1K) * 1000)


def config(ledger: str = "sql", redis_url: str = "", **budgets: Any) -> GatewayConfig:
    return parse_config(
        {
            "deployments": [
                {
                    "name": "big",
                    "base_url": "http://mock/v1",
                    "model": "big",
                    "input_cost_per_1k": IN_PER_1K,
                    "output_cost_per_1k": OUT_PER_1K,
                }
            ],
            "routes": {"smart": {"chain": ["big"]}, "other": {"chain": ["big"]}},
            "scheduler": {"redis_url": redis_url, "key_prefix": f"mloop:test:{uuid.uuid4().hex}:"},
            "budgets": {"ledger": ledger, **budgets},
        }
    )


def body(route: str = "smart") -> dict[str, Any]:
    return {
        "model": route,
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": MAX_TOKENS,
    }


@asynccontextmanager
async def replicas(
    settings: Settings, cfg: GatewayConfig, n: int = 2
) -> AsyncIterator[tuple[list[httpx.AsyncClient], list[FastAPI]]]:
    settings.home.mkdir(parents=True, exist_ok=True)
    provider = MockProvider({"big": MockModel()}, seed=7)
    async with AsyncExitStack() as stack:
        clients, apps = [], []
        for i in range(n):
            app: FastAPI = create_app(
                cfg,
                settings,
                auth=True,
                job_store=SqlJobStore(f"sqlite:///{settings.home / f'jobs{i}.db'}"),
                transport=httpx.ASGITransport(app=provider.app),
            )
            await stack.enter_async_context(app.router.lifespan_context(app))
            apps.append(app)
            http = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=f"http://gw{i}", timeout=60
            )
            clients.append(await stack.enter_async_context(http))
        yield clients, apps


def team_key(settings: Settings, key: Limits, team: Limits | None = None) -> tuple[str, str]:
    store = MetadataStore.from_settings(settings)
    info, token = KeyStore(store).create("search-bot", ["gateway"])
    limits = LimitStore(store)
    if team is not None:
        limits.set_team("search", team)
    limits.set_key(info.key_id, key, team="search" if team is not None else None)
    store.dispose()
    return info.key_id, token


async def storm(clients: list[httpx.AsyncClient], token: str, n: int = 64) -> list[httpx.Response]:
    headers = {"authorization": f"Bearer {token}"}
    return await asyncio.gather(
        *(
            clients[i % len(clients)].post("/v1/chat/completions", json=body(), headers=headers)
            for i in range(n)
        )
    )


def cost_micro(response: httpx.Response) -> int:
    usage: dict[str, int] = response.json()["usage"]
    usd = (usage["prompt_tokens"] * IN_PER_1K + usage["completion_tokens"] * OUT_PER_1K) / 1000
    return math.ceil(round(usd * 1_000_000, 6))


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Settings, str, str]]:
    """(settings, ledger kind, redis url) for each shared ledger."""
    home = tmp_path / "home"
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        yield load_settings(env={}, config_file=None, home=home, database_url=url), "sql", ""
    elif request.param == "redis":
        redis_url = request.getfixturevalue("redis_url")
        yield load_settings(env={}, config_file=None, home=home), "redis", redis_url
    else:
        yield load_settings(env={}, config_file=None, home=home), "sql", ""


@pytest.mark.parametrize("fits", [20, 64])
def test_64_concurrent_requests_on_two_replicas_never_overspend(
    backend: tuple[Settings, str, str], fits: int
) -> None:
    settings, kind, redis_url = backend
    budget_micro = fits * MAX_COST_MICRO + MAX_COST_MICRO // 2
    key_id, token = team_key(settings, Limits(budgets_usd={"day": budget_micro / 1e6}))
    cfg = config(kind, redis_url)

    async def scenario() -> tuple[list[httpx.Response], list[Any]]:
        async with replicas(settings, cfg) as (clients, apps):
            responses = await storm(clients, token)
            for app in apps:
                await app.state.gateway.spending.flush()  # the per-day tallies
            spending = apps[0].state.gateway.spending
            return responses, await spending.ledger.rows(period="day")

    responses, rows = asyncio.run(scenario())
    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    others = [r.text[:300] for r in responses if r.status_code not in (200, 429)]
    assert len(ok) + len(refused) == 64, others[:3]
    spent = sum(cost_micro(r) for r in ok)
    assert spent <= budget_micro  # zero overspend
    assert len(ok) >= fits  # every request that fits by its maximum cost is served
    if fits == 64:
        assert not refused  # no false 429s when the budget holds them all
    for r in refused:
        err = r.json()["error"]
        assert err["code"] == "budget_exceeded"
        assert err["budget"] == {"subject": f"key:{key_id}", "metric": "usd", "period": "day"}
        assert err["remaining"] < err["requested"]  # refused only when it could not fit
        assert int(r.headers["retry-after"]) >= 1
    row = next(r for r in rows if r.subject == f"key:{key_id}" and r.metric == "usd")
    assert row.spent == spent and row.reserved == 0  # the ledger holds the real cost
    route_row = next(r for r in rows if r.subject == "route:smart")
    assert route_row.spent == spent


def test_team_budget_is_shared_and_routes_are_enforced(tmp_path: Path) -> None:
    settings = load_settings(env={}, config_file=None, home=tmp_path / "home")
    team_budget = 5 * MAX_COST_MICRO
    _, token = team_key(
        settings,
        Limits(routes=("smart",), budgets_usd={"day": 100.0}),
        Limits(budgets_usd={"week": team_budget / 1e6}),
    )

    async def scenario() -> tuple[list[httpx.Response], httpx.Response]:
        async with replicas(settings, config(), n=1) as (clients, _):
            client = clients[0]
            responses = await storm(clients, token, n=16)
            other = await client.post(
                "/v1/chat/completions",
                json=body("other"),
                headers={"authorization": f"Bearer {token}"},
            )
            return responses, other

    responses, other = asyncio.run(scenario())
    assert sum(cost_micro(r) for r in responses if r.status_code == 200) <= team_budget
    assert sum(r.status_code == 200 for r in responses) >= 5
    refusal = next(r.json()["error"] for r in responses if r.status_code == 429)
    assert refusal["budget"]["subject"] == "team:search"
    assert refusal["budget"]["period"] == "week"
    assert refusal["resets_at"].endswith("T00:00:00Z")
    assert other.status_code == 403
    assert "routes ['smart']" in other.json()["error"]["message"]


def test_ledger_down_fails_closed_or_open_as_configured(tmp_path: Path) -> None:
    settings = load_settings(env={}, config_file=None, home=tmp_path / "home")
    _, token = team_key(settings, Limits(budgets_usd={"day": 1.0}))

    class Down(MemoryLedger):
        async def reserve(self, charges: Any, hold_id: str, expires_at: float) -> None:
            raise ConnectionError("ledger host unreachable")

    async def one(fail_open: bool) -> httpx.Response:
        cfg = replace(config(), budget_fail_open=fail_open)
        app = create_app(
            cfg,
            settings,
            auth=True,
            ledger=Down(),
            job_store=SqlJobStore(f"sqlite:///{tmp_path / 'jobs.db'}"),
            transport=httpx.ASGITransport(app=MockProvider({"big": MockModel()}).app),
        )
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://gw") as http,
        ):
            return await http.post(
                "/v1/chat/completions", json=body(), headers={"authorization": f"Bearer {token}"}
            )

    closed = asyncio.run(one(False))
    assert closed.status_code == 503
    assert closed.json()["error"]["type"] == "retryable"
    assert "fail_open" in closed.json()["error"]["message"]
    assert asyncio.run(one(True)).status_code == 200


# --- the ledger contract, every backend -------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "postgresql", "redis"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "memory":
        yield MemoryLedger()
    elif request.param == "redis":
        url = request.getfixturevalue("redis_url")
        yield RedisLedger(url, prefix=f"mloop:test:{uuid.uuid4().hex}:")
    else:
        url = (
            request.getfixturevalue("postgres_url")
            if request.param == "postgresql"
            else f"sqlite:///{tmp_path / 'ledger.db'}"
        )
        store = MetadataStore(url)
        yield SqlLedger(store)
        store.dispose()


NOW = time.time()  # Redis expires rows a day after their window ends: a window of now
LATER = NOW + 3600


def charge(amount: int, cap: int | None, subject: str = "key:k") -> Charge:
    start, end = window("day", NOW)
    return Charge(subject, "usd", "day", start, end, amount, cap)


def test_ledger_holds_all_or_nothing_and_settles_the_real_amount(ledger: Ledger) -> None:
    async def scenario() -> tuple[list[Any], int]:
        await ledger.reserve([charge(60, 100), charge(60, None, "route:r")], "h1", LATER)
        try:
            await ledger.reserve([charge(10, 1000, "team:t"), charge(50, 100)], "h2", LATER)
        except Exceeded as exc:
            used = exc.used
        # The team's row was not held either: all or nothing.
        await ledger.settle(["h1"], [charge(0, 100), charge(0, None, "route:r")], [25, 25])
        await ledger.settle(["h1"], [], [])  # settled already: released once, not twice
        await ledger.reserve([charge(75, 100)], "h3", LATER)  # 25 spent + 75 fits exactly
        rows = await ledger.rows(period="day", at=NOW)
        await ledger.aclose()
        return rows, used

    rows, used = asyncio.run(scenario())
    assert used == 60
    by_subject = {r.subject: (r.spent, r.reserved) for r in rows}
    assert by_subject["key:k"] == (25, 75)
    assert by_subject["route:r"] == (25, 0)
    assert by_subject.get("team:t", (0, 0)) == (0, 0)


def test_ledger_never_passes_a_cap_under_64_concurrent_reservations(ledger: Ledger) -> None:
    async def scenario() -> tuple[int, int]:
        async def one() -> bool:
            try:
                hold = uuid.uuid4().hex
                await ledger.reserve([charge(7, 100), charge(7, 1000, "team:t")], hold, LATER)
                return True
            except Exceeded:
                return False

        held = sum(await asyncio.gather(*(one() for _ in range(64))))
        rows = await ledger.rows(period="day")
        await ledger.aclose()
        return held, next(r.reserved for r in rows if r.subject == "key:k")

    held, reserved = asyncio.run(scenario())
    assert held == 14 and reserved == 98  # 14 x 7 <= 100 < 15 x 7


def test_holds_of_a_replica_that_died_are_released_once_by_a_sweep(ledger: Ledger) -> None:
    async def scenario() -> tuple[int, int, list[Any]]:
        await ledger.reserve([charge(40, 100)], "dead", NOW + 10)  # never settled
        await ledger.reserve([charge(30, 100)], "alive", NOW + 3600)
        early = await ledger.sweep(NOW + 5)
        released = await ledger.sweep(NOW + 11)
        await ledger.settle(["dead"], [charge(0, 100)], [12])  # a late settle: spend only
        await ledger.sweep(NOW + 20)
        rows = await ledger.rows(period="day")
        await ledger.aclose()
        return early, released, rows

    early, released, rows = asyncio.run(scenario())
    assert (early, released) == (0, 1)
    row = next(r for r in rows if r.subject == "key:k")
    assert (row.spent, row.reserved) == (12, 30)  # only the live hold is still held


def test_cli_sets_limits_and_teams_and_reports_spend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from mloop.cli._gateway import gateway_app

    home = tmp_path / "home"
    monkeypatch.setenv("MLOOP_HOME", str(home))
    settings = load_settings(env={}, config_file=None, home=home)
    store = MetadataStore.from_settings(settings)
    info, token = KeyStore(store).create("bot", ["gateway"])
    cli = CliRunner()
    assert cli.invoke(gateway_app, ["team", "search", "--budget", "week=50"]).exit_code == 0
    done = cli.invoke(
        gateway_app,
        ["limit", info.key_id, "--team", "search", "--route", "smart", "--budget", "day=2"],
    )
    assert done.exit_code == 0, done.output
    bad = cli.invoke(gateway_app, ["limit", info.key_id, "--budget", "year=2"])
    assert bad.exit_code == 2 and "PERIOD=USD" in bad.output
    missing = cli.invoke(gateway_app, ["limit", info.key_id, "--team", "nobody"])
    assert missing.exit_code == 2 and "mloop gateway team nobody" in missing.output

    async def one() -> httpx.Response:
        async with replicas(settings, config(), n=1) as (clients, _):
            return (await storm(clients, token, n=1))[0]

    assert asyncio.run(one()).status_code == 200
    report = cli.invoke(gateway_app, ["spend", "--json"])
    assert report.exit_code == 0, report.output
    rows = {(r["subject"], r["metric"]): r for r in json.loads(report.output)}
    key_row = rows[(f"key:{info.key_id}", "usd")]
    assert key_row["cap"] == 2.0 and 0 < key_row["spent"] <= MAX_COST_MICRO / 1e6
    assert key_row["held"] == 0
    assert rows[("team:search", "usd")]["spent"] == key_row["spent"]
    assert rows[("deployment:big", "usd")]["spent"] == key_row["spent"]
    store.dispose()


def test_rpm_cap_refuses_past_the_minute_and_metrics_show_spend(tmp_path: Path) -> None:
    settings = load_settings(env={}, config_file=None, home=tmp_path / "home")
    key_id, token = team_key(settings, Limits(rpm=10, tpm=100_000))
    store = MetadataStore.from_settings(settings)
    _, admin = KeyStore(store).create("ops", ["admin"])
    clock = ManualClock(start=time.time())
    provider = MockProvider({"big": MockModel()})
    gw = Gateway(config("memory"), transport=httpx.ASGITransport(app=provider.app))
    gw.spending = Spending(LimitStore(store), MemoryLedger(), gw.metrics, clock=clock)
    app = create_app(
        gw.config,
        settings,
        gateway=gw,
        auth=True,
        job_store=SqlJobStore(f"sqlite:///{tmp_path / 'jobs.db'}"),
    )

    async def scenario() -> tuple[list[httpx.Response], httpx.Response, str]:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://gw") as http,
        ):
            responses = await storm([http], token, n=30)
            clock.advance(60)  # the next minute
            later = (await storm([http], token, n=1))[0]
            metrics = await http.get("/metrics", headers={"authorization": f"Bearer {admin}"})
            return responses, later, metrics.text

    responses, later, metrics = asyncio.run(scenario())
    assert sum(r.status_code == 200 for r in responses) == 10
    refusal = next(r.json()["error"] for r in responses if r.status_code == 429)
    assert refusal["budget"] == {
        "subject": f"key:{key_id}",
        "metric": "requests",
        "period": "minute",
    }
    assert refusal["remaining"] == 0
    assert later.status_code == 200
    assert f'mloop_gateway_spend_usd_total{{deployment="big",key="{key_id}"' in metrics
    assert (
        f'mloop_gateway_budget_refusals_total{{budget="requests/minute",subject="key:{key_id}"}} 20.0'
        in metrics
    )
    store.dispose()


def test_async_jobs_bill_the_key_that_submitted_them(tmp_path: Path) -> None:
    settings = load_settings(env={}, config_file=None, home=tmp_path / "home")
    key_id, token = team_key(settings, Limits(budgets_usd={"day": 10.0}))
    headers = {"authorization": f"Bearer {token}"}

    async def scenario() -> tuple[str, list[Any]]:
        async with replicas(settings, config(), n=1) as (clients, apps):
            http = clients[0]
            request = {**body(), "x_mloop_key_id": "someone-else"}  # ignored
            job = (await http.post("/v1/jobs", json={"request": request}, headers=headers)).json()
            status = job["status"]
            for _ in range(500):  # the job runs in the app's own task
                status = (await http.get(f"/v1/jobs/{job['id']}", headers=headers)).json()
                if status["status"] in ("succeeded", "failed"):
                    break
                await asyncio.sleep(0.01)
            await apps[0].state.gateway.spending.flush()
            rows = await apps[0].state.gateway.spending.ledger.rows(period="day")
            return status["status"], rows

    status, rows = asyncio.run(scenario())
    assert status == "succeeded"
    spent = {r.subject: r.spent for r in rows if r.metric == "usd"}
    assert spent[f"key:{key_id}"] > 0
    assert "key:someone-else" not in spent

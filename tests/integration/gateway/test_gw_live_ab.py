"""Live A/B of two prompt versions on gateway traffic, driven by the mock provider: a
better candidate takes the alias, a worse one is stopped and the alias stays; outcomes
live in the shared store, so a restart keeps them and two replicas count together."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from mloop.errors import Conflict
from mloop.gateway import (
    Gateway,
    LiveAB,
    PromptRegistry,
    SqlJobStore,
    create_app,
    parse_config,
)
from mloop.gateway.testing import MockModel, MockProvider
from mloop.store import MetadataStore

PROMPT = "support-answer"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
    else:
        yield request.getfixturevalue("postgres_url")


def registry_at(url: str) -> PromptRegistry:
    return PromptRegistry(MetadataStore(url), cache_ttl_s=0.0)


def seed(url: str) -> PromptRegistry:
    """v1 answers "Lyon", v2 "Paris" (the mock echoes the system prompt); production -> 1."""
    registry = registry_at(url)
    registry.create(PROMPT, {"system": "Lyon"})
    registry.create(PROMPT, {"system": "Paris"})
    registry.set_alias(PROMPT, "production", 1)
    return registry


def replica(url: str, tmp_path: Path, name: str = "a") -> tuple[FastAPI, LiveAB]:
    """One gateway replica on the metadata database ``url`` (caches off: decisions show at once)."""
    live = LiveAB(registry_at(url), cache_ttl_s=0.0, check_interval_s=0.0)
    config = parse_config(
        {
            "deployments": [{"name": "big", "base_url": "http://mock/v1", "model": "big"}],
            "routes": {
                "support": {
                    "chain": ["big"],
                    "templates": {"big": {"prompt": f"{PROMPT}@production"}},
                }
            },
        }
    )
    mock = MockProvider({"big": MockModel(content="{system}")})
    gw = Gateway(config, transport=httpx.ASGITransport(app=mock.app), prompts=live, env={})
    app = create_app(
        config, gateway=gw, auth=False, job_store=SqlJobStore(f"sqlite:///{tmp_path / name}.db")
    )
    return app, live


async def ask(client: httpx.AsyncClient, user: str) -> httpx.Response:
    body = {"model": "support", "user": user, "messages": [{"role": "user", "content": "City?"}]}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return response


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


def test_a_candidate_whose_answers_score_better_takes_the_alias(
    db_url: str, tmp_path: Path
) -> None:
    registry = seed(db_url)
    app, live = replica(db_url, tmp_path)
    experiment = live.start(
        f"{PROMPT}@production",
        2,
        metric="regex",
        case={"expected": "Paris"},
        min_samples=20,
        share=0.5,
    )

    async def scenario() -> list[httpx.Response]:
        answers = []
        async with app.router.lifespan_context(app), client_for(app) as client:
            for i in range(300):
                answers.append(await ask(client, f"u{i}"))
                if live.store.get(experiment.id).status != "running":
                    break
            answers.append(await ask(client, "after"))
        return answers

    answers = asyncio.run(scenario())
    ended = live.store.get(experiment.id)
    assert ended.status == "promoted"
    assert ended.reason.startswith("live A/B: candidate better: support-answer@2 scored 1.000")
    assert registry.lookup(f"{PROMPT}@production").version == 2
    moved = registry.history(PROMPT)[0]
    assert moved["action"] == "prompt.alias" and moved["actor"] == "live-ab"
    assert (moved["from"], moved["to"], moved["why"]) == (1, 2, ended.reason)
    # Another replica looking now finds the experiment decided: nothing moves twice.
    assert LiveAB(registry_at(db_url)).evaluate(experiment.id) is None
    assert [h["actor"] for h in registry.history(PROMPT)].count("live-ab") == 1
    tagged = answers[:-1]
    for r in tagged:  # every answer says which version and arm served it
        version = r.headers["x-mloop-prompt-version"]
        arm = r.headers["x-mloop-ab-arm"]
        assert version == f"{PROMPT}@{2 if arm == 'candidate' else 1}"
        assert r.json()["choices"][0]["message"]["content"] == (
            "Paris" if arm == "candidate" else "Lyon"
        )
    status = live.status(experiment.id)
    assert status["arms"]["control"]["outcomes"] >= 20
    assert status["arms"]["candidate"]["outcomes"] >= 20
    assert status["arms"]["control"]["requests"] + status["arms"]["candidate"]["requests"] == len(
        tagged
    )
    # Once decided, everyone gets the new production version, outside any experiment.
    assert answers[-1].headers["x-mloop-template-version"] == f"{PROMPT}@2"
    assert "x-mloop-ab-arm" not in answers[-1].headers


def test_a_worse_candidate_by_user_feedback_is_stopped_and_the_alias_stays(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    registry = seed(url)
    app, live = replica(url, tmp_path)
    experiment = live.start(f"{PROMPT}@production", 2, min_samples=30, share=0.5)
    liked = {"control": 0.75, "candidate": 0.45}  # users prefer the control's answers
    rng = random.Random(7)

    async def scenario() -> int:
        async with app.router.lifespan_context(app), client_for(app) as client:
            for i in range(2_000):
                answer = await ask(client, f"user-{i}")
                thumbs = "up" if rng.random() < liked[answer.headers["x-mloop-ab-arm"]] else "down"
                rid = answer.headers["x-mloop-request-id"]
                sent = await client.post("/v1/feedback", json={"request_id": rid, "thumbs": thumbs})
                assert sent.status_code == 200, sent.text
                if live.store.get(experiment.id).status != "running":
                    return i + 1
        return -1

    served = asyncio.run(scenario())
    assert served > 60  # it waited for the minimum, and then for evidence
    ended = live.store.get(experiment.id)
    assert ended.status == "stopped"
    assert ended.reason.startswith("live A/B: candidate worse")
    assert registry.lookup(f"{PROMPT}@production").version == 1
    assert registry.history(PROMPT)[0]["action"] == "prompt.ab_stop"


def test_feedback_mistakes_are_clear_json_errors_and_status_is_plain_data(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    seed(url)
    app, live = replica(url, tmp_path)
    experiment = live.start(f"{PROMPT}@production", 2, min_samples=5)

    async def scenario() -> dict[str, httpx.Response]:
        async with app.router.lifespan_context(app), client_for(app) as client:
            answer = await ask(client, "u1")
            rid = answer.headers["x-mloop-request-id"]
            return {
                "unknown": await client.post(
                    "/v1/feedback", json={"request_id": "nope", "thumbs": "up"}
                ),
                "bad": await client.post("/v1/feedback", json={"request_id": rid, "score": 3}),
                "good": await client.post("/v1/feedback", json={"request_id": rid, "score": 0.5}),
                "status": await client.get(f"/v1/ab/{experiment.id}"),
                "missing": await client.get("/v1/ab/ab_nothing"),
                "list": await client.get("/v1/ab"),
            }

    r = asyncio.run(scenario())
    unknown = r["unknown"].json()["error"]
    assert r["unknown"].status_code == 404 and unknown["type"] == "user_fixable"
    assert "'nope'" in unknown["message"] and "x-mloop-request-id" in unknown["message"]
    assert r["bad"].status_code == 422 and "between 0 and 1" in r["bad"].json()["error"]["message"]
    assert r["good"].status_code == 200 and r["good"].json()["score"] == 0.5
    status = r["status"].json()
    assert status["status"] == "running" and status["ref"] == f"{PROMPT}@production"
    served = [a for a in status["arms"].values() if a["requests"]]
    assert len(served) == 1 and served[0]["outcomes"] == 1 and served[0]["mean"] == 0.5
    assert status["decision"]["action"] == "continue" and status["decision"]["p_value"] is None
    assert r["missing"].status_code == 404
    assert [e["id"] for e in r["list"].json()["experiments"]] == [experiment.id]


def test_a_restart_mid_experiment_keeps_counts_and_open_feedback(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    seed(url)
    first, live = replica(url, tmp_path, "first")
    experiment = live.start(f"{PROMPT}@production", 2, min_samples=50)

    async def before() -> list[str]:
        async with first.router.lifespan_context(first), client_for(first) as client:
            ids = []
            for i in range(12):
                ids.append((await ask(client, f"u{i}")).headers["x-mloop-request-id"])
            for rid in ids[:6]:
                await client.post("/v1/feedback", json={"request_id": rid, "thumbs": "up"})
            return ids

    ids = asyncio.run(before())
    second, _ = replica(url, tmp_path, "second")  # a new process: nothing kept in memory

    async def after() -> dict[str, Any]:
        async with second.router.lifespan_context(second), client_for(second) as client:
            for rid in ids[6:]:  # answered before the restart, scored after it
                sent = await client.post("/v1/feedback", json={"request_id": rid, "thumbs": "down"})
                assert sent.status_code == 200
            await ask(client, "u-new")
            return (await client.get(f"/v1/ab/{experiment.id}")).json()

    status = asyncio.run(after())
    arms = status["arms"]
    assert arms["control"]["requests"] + arms["candidate"]["requests"] == 13
    assert arms["control"]["outcomes"] + arms["candidate"]["outcomes"] == 12
    total = sum(a["mean"] * a["outcomes"] for a in arms.values() if a["outcomes"])
    assert total == pytest.approx(6.0)


def test_two_replicas_on_one_postgresql_count_outcomes_together(
    postgres_url: str, tmp_path: Path
) -> None:
    seed(postgres_url)
    a, live_a = replica(postgres_url, tmp_path, "a")
    b, live_b = replica(postgres_url, tmp_path, "b")
    experiment = live_a.start(f"{PROMPT}@production", 2, min_samples=1_000)

    async def scenario() -> None:
        async with (
            a.router.lifespan_context(a),
            b.router.lifespan_context(b),
            client_for(a) as ca,
            client_for(b) as cb,
        ):
            answers = await asyncio.gather(
                *(ask(ca if i % 2 else cb, f"user-{i}") for i in range(40))
            )
            # The same user lands in the same arm on either replica.
            again = await ask(cb, "user-1")
            assert again.headers["x-mloop-ab-arm"] == answers[1].headers["x-mloop-ab-arm"]
            for i, answer in enumerate(answers):  # feedback reaches the *other* replica
                rid = answer.headers["x-mloop-request-id"]
                sent = await (cb if i % 2 else ca).post(
                    "/v1/feedback", json={"request_id": rid, "score": 1.0}
                )
                assert sent.status_code == 200, sent.text

    asyncio.run(scenario())
    for live in (live_a, live_b):
        arms = live.status(experiment.id)["arms"]
        assert arms["control"]["requests"] + arms["candidate"]["requests"] == 41
        assert arms["control"]["outcomes"] + arms["candidate"]["outcomes"] == 40
        assert arms["control"]["requests"] > 0 and arms["candidate"]["requests"] > 0


def test_stopping_by_hand_keeps_the_alias_and_one_experiment_per_alias(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    registry = seed(url)
    live = LiveAB(registry_at(url), cache_ttl_s=0.0)
    first = live.start(f"{PROMPT}@production", 2)
    with pytest.raises(Conflict, match=f"mloop gateway ab stop {first.id}"):
        live.start(f"{PROMPT}@production", 2)
    stopped = live.stop(first.id, reason="copy error in v2")
    assert (stopped.status, stopped.reason) == ("stopped", "stopped by hand: copy error in v2")
    assert live.stop(first.id).reason == stopped.reason  # idempotent
    assert registry.lookup(f"{PROMPT}@production").version == 1
    assert live.resolve(f"{PROMPT}@production", "user:any").version == 1
    assert live.start(f"{PROMPT}@production", 2).id != first.id  # the alias is free again


def test_cli_starts_reports_and_stops_an_experiment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from mloop.cli._gateway import gateway_app
    from mloop.config import load_settings

    monkeypatch.setenv("MLOOP_HOME", str(tmp_path / "home"))
    seed(load_settings().database_url)
    cli = CliRunner()
    started = cli.invoke(
        gateway_app,
        ["ab", "start", f"{PROMPT}@production", "--candidate", "2", "--share", "0.2", "--json"],
    )
    assert started.exit_code == 0, started.output
    experiment = json.loads(started.output)
    assert (experiment["control"], experiment["candidate"], experiment["share"]) == (1, 2, 0.2)
    shown = cli.invoke(gateway_app, ["ab", "status", experiment["id"], "--json"])
    assert json.loads(shown.output)["arms"]["candidate"] == {
        "version": 2,
        "requests": 0,
        "outcomes": 0,
        "mean": None,
        "variance": None,
    }
    text = cli.invoke(gateway_app, ["ab", "status"])
    assert "@1 (control) vs @2 (candidate, 20% of traffic)" in text.output
    assert "collecting outcomes" in text.output
    again = cli.invoke(gateway_app, ["ab", "start", f"{PROMPT}@production", "--candidate", "2"])
    assert again.exit_code == 2 and "already under test" in again.output
    stopped = cli.invoke(gateway_app, ["ab", "stop", experiment["id"], "--reason", "enough"])
    assert stopped.exit_code == 0 and "stopped by hand: enough" in stopped.output
    wrong = cli.invoke(gateway_app, ["ab", "start", f"{PROMPT}@3", "--candidate", "2"])
    assert wrong.exit_code == 2 and "runs on an alias" in wrong.output

"""The prompt registry: immutable versions, aliases, diff, lineage; the gateway resolves a
route's prompt by alias per request, so moving the alias needs no restart."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from mloop._clock import ManualClock
from mloop.config import load_settings
from mloop.errors import ConfigurationError, InvalidInput, NotFound
from mloop.gateway import Gateway, PromptRegistry, SqlJobStore, create_app, parse_config
from mloop.store import MetadataStore


@pytest.fixture
def registry(tmp_path: Path) -> PromptRegistry:
    return PromptRegistry(MetadataStore(f"sqlite:///{tmp_path / 'm.db'}"), clock=ManualClock())


def test_versions_are_numbered_immutable_and_carry_lineage(registry: PromptRegistry) -> None:
    v1 = registry.create("support-answer", {"system": "Be brief."}, deployment="small")
    v2 = registry.create(
        "support-answer", {"system": "Be brief and kind.", "user": "Q: {content}"}, deployment="big"
    )
    assert (v1.ref, v2.ref) == ("support-answer@1", "support-answer@2")
    assert v2.parent == 1 and v2.deployment == "big"
    assert registry.get("support-answer", 1).fields["system"] == "Be brief."  # unchanged
    registry.set_alias("support-answer", "production", 1)
    assert registry.lookup("support-answer@production").version == 1
    assert registry.lookup("support-answer@2").version == 2
    assert registry.lookup("support-answer").version == 2  # latest
    diff = registry.diff("support-answer", 1, 2)
    assert '-  "system": "Be brief.",' in diff and '+  "system": "Be brief and kind.",' in diff
    assert '-  "deployment": "small",' in diff
    history = registry.history("support-answer")
    assert history[0]["action"] == "prompt.alias" and history[0]["to"] == 1


def test_mistakes_say_what_to_do(registry: PromptRegistry) -> None:
    registry.create("p", {"system": "x"})
    with pytest.raises(NotFound, match="mloop gateway prompt alias p production"):
        registry.lookup("p@production")
    with pytest.raises(NotFound, match="no version 7"):
        registry.set_alias("p", "production", 7)
    with pytest.raises(InvalidInput, match="content"):
        registry.create("p", {"user": "no placeholder"})
    with pytest.raises(InvalidInput, match="reserved"):
        registry.set_alias("p", "latest", 1)
    with pytest.raises(InvalidInput):
        registry.lookup("bad name@x")


def config(ref: str = "support-answer@production") -> Any:
    return parse_config(
        {
            "deployments": [{"name": "big", "base_url": "http://mock/v1", "model": "big"}],
            "routes": {"smart": {"chain": ["big"], "templates": {"big": {"prompt": ref}}}},
        }
    )


def echo_provider(seen: list[dict[str, Any]]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        answer = {"role": "assistant", "content": body["messages"][0]["content"]}
        return httpx.Response(200, json={"choices": [{"index": 0, "message": answer}]})

    return httpx.MockTransport(handle)


def test_moving_an_alias_changes_what_the_gateway_sends_without_a_restart(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    registry = PromptRegistry(
        MetadataStore(f"sqlite:///{tmp_path / 'm.db'}"), clock=clock, cache_ttl_s=2.0
    )
    registry.create("support-answer", {"system": "v1 rules"})
    registry.create("support-answer", {"system": "v2 rules"})
    registry.set_alias("support-answer", "production", 1)
    seen: list[dict[str, Any]] = []
    gw = Gateway(config(), transport=echo_provider(seen), prompts=registry, env={})
    body = {"model": "smart", "messages": [{"role": "user", "content": "hi"}]}

    async def scenario() -> list[Any]:
        before = await gw.chat(body)
        registry.set_alias("support-answer", "production", 2)  # e.g. by another process
        clock.advance(3)
        after = await gw.chat(body)
        await gw.aclose()
        return [before, after]

    before, after = asyncio.run(scenario())
    assert seen[0]["messages"][0] == {"role": "system", "content": "v1 rules"}
    assert seen[1]["messages"][0] == {"role": "system", "content": "v2 rules"}
    assert before.headers()["x-mloop-template-version"] == "support-answer@1"
    assert after.headers()["x-mloop-template-version"] == "support-answer@2"


def test_the_app_resolves_prompts_from_the_settings_database(tmp_path: Path) -> None:
    settings = load_settings(env={}, config_file=None, home=tmp_path / "home")
    PromptRegistry(MetadataStore.from_settings(settings)).create("support-answer", {"system": "s"})
    seen: list[dict[str, Any]] = []
    app = create_app(
        config("support-answer"),
        settings,
        auth=False,
        job_store=SqlJobStore(f"sqlite:///{tmp_path / 'jobs.db'}"),
        transport=echo_provider(seen),
    )
    missing = create_app(
        config("nothing@production"),
        settings,
        auth=False,
        job_store=SqlJobStore(f"sqlite:///{tmp_path / 'jobs2.db'}"),
        transport=echo_provider(seen),
    )

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        body = {"model": "smart", "messages": [{"role": "user", "content": "hi"}]}
        out = []
        for a in (app, missing):
            async with (
                a.router.lifespan_context(a),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://gw") as h,
            ):
                out.append(await h.post("/v1/chat/completions", json=body))
        return out[0], out[1]

    ok, broken = asyncio.run(scenario())
    assert ok.status_code == 200 and ok.headers["x-mloop-template-version"] == "support-answer@1"
    assert broken.status_code == 500
    assert broken.json()["error"]["type"] == "operator_fixable"
    assert "nothing@production" in broken.json()["error"]["message"]
    with pytest.raises(ConfigurationError, match="prompt"):
        parse_config(
            {
                "deployments": [{"name": "big", "base_url": "u", "model": "m"}],
                "routes": {"r": {"chain": ["big"], "templates": {"big": {"prompt": 3}}}},
            }
        )

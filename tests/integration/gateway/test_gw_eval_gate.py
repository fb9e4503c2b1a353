"""The evaluation gate, driven by the mock provider: a prompt alias moves only through a
passing gate; a failing gate leaves it where it was and says why."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mloop.gateway import (
    Case,
    GatePolicy,
    PromptRegistry,
    evaluate,
    load_cases,
    parse_config,
)
from mloop.gateway.testing import MockModel, MockProvider
from mloop.store import MetadataStore

QUESTIONS = ["Capital of France?", "Where is the Louvre?", "City of the Eiffel tower?"] * 4


def provider() -> MockProvider:
    # "big" answers right, "small" answers wrong: a prompt version written for "big"
    # (its lineage) wins, one written for "small" loses.
    return MockProvider({"big": MockModel(content="Paris"), "small": MockModel(content="Lyon")})


def config_data(base_url: str = "http://mock/v1") -> dict[str, Any]:
    return {
        "deployments": [
            {"name": "big", "base_url": base_url, "model": "big"},
            {"name": "small", "base_url": base_url, "model": "small"},
        ],
        "routes": {
            "qa": {
                "chain": ["small", "big"],
                "templates": {
                    "small": {"prompt": "qa-prompt@production"},
                    "big": {"prompt": "qa-prompt@production"},
                },
            }
        },
    }


def write_cases(path: Path) -> Path:
    path.write_text(
        "".join(json.dumps({"input": q, "expected": "Paris"}) + "\n" for q in QUESTIONS)
    )
    return path


def test_the_alias_moves_only_when_the_gate_passes(tmp_path: Path) -> None:
    registry = PromptRegistry(MetadataStore(f"sqlite:///{tmp_path / 'm.db'}"))
    registry.create("qa-prompt", {"system": "Answer with a city."}, deployment="small")
    registry.set_alias("qa-prompt", "production", 1)
    registry.create("qa-prompt", {"system": "Answer with the city only."}, deployment="big")
    registry.create("qa-prompt", {"system": "Answer tersely."}, deployment="small")
    cases = load_cases(write_cases(tmp_path / "cases.jsonl"))
    mock = provider()
    policy = GatePolicy(min_mean=0.9, min_win_rate=0.6, max_regression=0.0)

    def run(candidate: str) -> Any:
        return asyncio.run(
            evaluate(
                parse_config(config_data()),
                registry,
                route="qa",
                candidate=candidate,
                cases=cases,
                scorer="exact",
                policy=policy,
                promote="production",
                transport=httpx.ASGITransport(app=mock.app),
                env={},
            )
        )

    better = run("qa-prompt@2")
    assert better.verdict.passed and better.promoted
    assert better.candidate_scores == (1.0,) * 12 and better.champion_scores == (0.0,) * 12
    assert registry.aliases("qa-prompt") == {"production": 2}
    assert "alias production: 1 -> qa-prompt@2" in better.explain()

    worse = run("qa-prompt@3")
    assert not worse.verdict.passed and not worse.promoted
    assert registry.aliases("qa-prompt") == {"production": 2}  # left where it was
    text = worse.explain()
    assert "gate FAILED" in text and "FAIL mean 0.000 (needs >= 0.9)" in text
    assert "alias production left at qa-prompt@2" in text
    moves = [h for h in registry.history("qa-prompt") if h["action"] == "prompt.alias"]
    assert [m["actor"] for m in moves] == ["eval-gate", "cli"]  # newest first
    assert json.loads(moves[0]["why"])["gate"]["candidate_mean"] == 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mock_server() -> Any:
    port = free_port()
    models = json.dumps({"big": {"content": "Paris"}, "small": {"content": "Lyon"}})
    proc = subprocess.Popen(
        [sys.executable, "-m", "mloop.gateway.testing", "--port", str(port), "--models", models],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{url}/v1/models", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_eval_prints_why_and_exits_1_when_the_gate_fails(
    tmp_path: Path, mock_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from mloop.cli._gateway import gateway_app

    home = tmp_path / "home"
    monkeypatch.setenv("MLOOP_HOME", str(home))
    config = tmp_path / "gateway.toml"
    config.write_text(
        "".join(
            f'[[deployments]]\nname = "{d}"\nbase_url = "{mock_server}/v1"\nmodel = "{d}"\n'
            for d in ("big", "small")
        )
        + '[routes.qa]\nchain = ["small", "big"]\n'
        + "".join(
            f'[routes.qa.templates.{d}]\nprompt = "qa-prompt@production"\n'
            for d in ("small", "big")
        )
    )
    cli = CliRunner()
    v1 = tmp_path / "v1.json"
    v1.write_text(json.dumps({"system": "Answer with a city."}))
    for deployment in ("small", "big"):
        made = cli.invoke(
            gateway_app,
            ["prompt", "create", "qa-prompt", "-f", str(v1), "--deployment", deployment],
        )
        assert made.exit_code == 0, made.output
    assert (
        cli.invoke(gateway_app, ["prompt", "alias", "qa-prompt", "production", "2"]).exit_code == 0
    )
    cases = write_cases(tmp_path / "cases.jsonl")
    args = ["eval", "-c", str(config), "--route", "qa", "--cases", str(cases), "--min-mean", "0.9"]
    failed = cli.invoke(
        gateway_app, [*args, "--candidate", "qa-prompt@1", "--promote", "production"]
    )
    assert failed.exit_code == 1, failed.output
    assert "gate FAILED" in failed.output and "FAIL mean 0.000" in failed.output
    listing = cli.invoke(gateway_app, ["prompt", "list", "qa-prompt", "--json"])
    assert json.loads(listing.output)["aliases"] == {"production": 2}
    diff = cli.invoke(gateway_app, ["prompt", "diff", "qa-prompt", "1", "2"])
    assert '-  "deployment": "small"' in diff.output


def test_an_llm_judge_scores_through_the_gateway_itself(tmp_path: Path) -> None:
    registry = PromptRegistry(MetadataStore(f"sqlite:///{tmp_path / 'm.db'}"))
    registry.create("qa-prompt", {"system": "Answer with a city."}, deployment="big")
    data = config_data()
    data["deployments"].append({"name": "grader", "base_url": "http://mock/v1", "model": "grader"})
    data["routes"]["judge"] = {"chain": ["grader"]}
    mock = MockProvider(
        {"big": MockModel(content="Paris"), "small": MockModel(), "grader": MockModel(content="8")}
    )
    cases = [Case("Capital of France?", rubric="names Paris")] * 3
    report = asyncio.run(
        evaluate(
            parse_config(data),
            registry,
            route="qa",
            candidate="qa-prompt@1",
            cases=cases,
            scorer="judge:judge",
            policy=GatePolicy(min_mean=0.7),
            promote="production",
            transport=httpx.ASGITransport(app=mock.app),
            env={},
        )
    )
    assert report.candidate_scores == (0.8, 0.8, 0.8)
    assert report.verdict.passed and report.promoted and report.champion is None
    assert mock.stats["grader"].calls == 3
    assert registry.aliases("qa-prompt") == {"production": 1}

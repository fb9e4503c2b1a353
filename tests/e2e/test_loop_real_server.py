"""The closed loop on the real server: ``mloop serve`` heals its model by itself.

Each test writes an ``mloop.toml`` with a drift alert and a retraining pipeline
(time compressed by settings: windows and rollout steps of seconds), registers the
champion and starts ``mloop serve`` as a child process. From then on the test only
sends traffic and labels over HTTP and reads state; the server fires the alert,
retrains on its own log joined with the labels, validates, gates, shadows,
canaries, and promotes or rolls back. The audit trail is read with the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mloop.demo.loop import (
    LoopSpeed,
    Traffic,
    drive,
    free_port,
    loop_config,
    mloop_cli,
    production_version,
    register_champion,
    serve,
    write_project,
)
from mloop.demo.penguins import MODEL

pytestmark = pytest.mark.slow

CALM_S = 5
LOOP_TIMEOUT_S = 150.0


def _runs(folder: Path) -> list[dict[str, Any]]:
    return list(json.loads(mloop_cli(folder, "runs", "list", "--json")))


def _run(folder: Path, run_id: str) -> dict[str, Any]:
    return dict(json.loads(mloop_cli(folder, "runs", "show", run_id, "--json")))


def _rollout_history(folder: Path) -> list[dict[str, Any]]:
    return list(json.loads(mloop_cli(folder, "rollout", "history", MODEL, "--json")))


def _finished_runs(folder: Path) -> list[dict[str, Any]]:
    return [r for r in _runs(folder) if r["status"] not in ("running", "pending")]


def _loop(folder: Path, config: str, *, poison: float = 0.0, until: Any) -> tuple[Traffic, float]:
    """Calm traffic, then Dream island traffic until ``until(home)``; then one more second."""
    home = write_project(folder, config)
    champion = register_champion(home)
    assert champion.version == 1
    with serve(folder, free_port()) as url:
        client = Traffic(url, poison=poison)
        try:
            calm = [client.second(dream_share=0.0) for _ in range(CALM_S)]
            assert min(calm) > 0.9, f"the champion should serve calm traffic well: {calm}"
            assert _runs(folder) == [], "calm traffic must not start a run"
            done = drive(
                client, dream_share=0.5, until=lambda: until(home), timeout_s=LOOP_TIMEOUT_S
            )
            after = client.second(dream_share=0.5)
        finally:
            client.close()
    assert done, (folder / "server.log").read_text()[-4000:]
    return client, after


def test_drift_retrains_gates_shadows_canaries_and_promotes(tmp_path: Path) -> None:
    folder = tmp_path / "loop"
    _client, after = _loop(folder, loop_config(), until=lambda home: production_version(home) == 2)
    assert after > 0.9, "the promoted challenger knows the Chinstraps"

    (run,) = _runs(folder)
    run = _run(folder, run["id"])
    assert run["status"] == "succeeded", run
    assert run["trigger"]["kind"] == "alert", run["trigger"]
    assert run["trigger"]["key"].startswith(f"{MODEL}-drift"), run["trigger"]
    assert run["reports"]["validate"]["passed"] and run["reports"]["gate"]["passed"], run
    assert run["model_version"] == 2

    story = [(e["action"], e["reason"]) for e in _rollout_history(folder)]  # oldest first
    assert [a for a, _ in story] == [
        "create",  # the pipeline started a shadow ...
        "start",
        "complete",  # ... whose guards held for its whole period,
        "create",  # so the controller handed over to a canary
        "start",
        "advance",
        "promote",
    ], story
    assert "mloop-pipelines" in story[0][1] and "canary" in story[3][1], story


def test_poisoned_labels_stop_the_run_at_validation(tmp_path: Path) -> None:
    folder = tmp_path / "poisoned"
    _loop(folder, loop_config(), poison=0.3, until=lambda _home: bool(_finished_runs(folder)))
    (run,) = _finished_runs(folder)
    run = _run(folder, run["id"])
    assert run["status"] == "rejected", run
    steps = {s["name"]: s["status"] for s in run["steps"]}
    assert steps["validate"] == "failed" and steps["train"] == "pending", steps
    failed = [c["name"] for c in run["reports"]["validate"]["checks"] if not c["passed"]]
    assert "label_flips" in failed, failed
    assert production_version(folder / ".mloop") == 1
    assert _rollout_history(folder) == []


def test_a_worse_challenger_never_passes_the_first_canary_step(tmp_path: Path) -> None:
    folder = tmp_path / "worse"
    config = loop_config(
        pipeline="mloop.demo.penguins:broken_pipeline",
        gate={"min_improvement": -1.0},  # an operator's lax gate lets the broken model through
        strategy="canary",
        speed=LoopSpeed(canary_step_s=8.0),
    )

    def rolled_back(_home: Path) -> bool:
        return any(e["action"] == "rollback" for e in _rollout_history(folder))

    client, _after = _loop(folder, config, until=rolled_back)
    history = _rollout_history(folder)
    assert [e["action"] for e in history] == ["create", "start", "rollback"], history
    assert history[1]["weight"] == 25.0, history  # the first step, never the second
    rollback = history[-1]
    assert "accuracy_drop" in rollback["reason"], rollback
    assert rollback["observations"]["metrics"]["accuracy_drop"] >= 0.1, rollback
    assert production_version(folder / ".mloop") == 1
    assert set(client.answered) == {1, 2}, client.answered  # the candidate did serve

"""End to end at the library level, time compressed by a manual clock.

A model is served; traffic drifts; feedback shows accuracy falling; the alert starts a
run; the challenger trained on recent data passes validation and the gate; it goes
through shadow and canary (the real rollout controller) and is promoted; the audit
trail tells the story. Then poisoned labels are stopped at validation and production
is untouched.
"""

from __future__ import annotations

import pytest

from mloop._clock import ManualClock
from mloop.config import Settings
from mloop.pipelines.demo import MODEL, START, LoopScenario
from mloop.registry import Registry

pytestmark = pytest.mark.slow


def test_drift_alert_retrain_gate_shadow_canary_promote_then_poison_is_stopped(
    settings: Settings,
) -> None:
    clock = ManualClock(START)
    registry = Registry(settings, clock=clock)
    loop = LoopScenario(registry, clock)
    assert loop.register_champion() == 1

    calm = [loop.hour(0.0, seed=h) for h in range(3)]
    assert min(s.accuracy for s in calm) > 0.95

    run_id = None
    for h in range(3, 8):
        served = loop.hour(0.5, seed=h)
        fired = [o for o in loop.check_alert(served.accuracy) if o.fired]
        if fired:
            run_id = fired[0].run_id
            break
    assert run_id is not None, "the accuracy alert never started a run"
    assert served.accuracy < 0.9

    run = loop.runner.get(run_id)
    assert run.status == "succeeded", run.error
    assert run.trigger["kind"] == "alert" and run.trigger["key"] == "penguins-accuracy"
    assert run.reports["validate"]["passed"] and run.reports["gate"]["passed"]
    challenger = registry.get(f"{MODEL}@challenger")
    assert challenger.version == run.model_version == 2
    assert challenger.lineage["dataset_sha256"] == run.dataset
    assert "Chinstrap" in [str(c) for c in challenger.classes]

    # More alerts while the run's cooldown holds start nothing.
    assert not any(o.fired for o in loop.service.on_alert({"model": MODEL, "rule": "other"}))

    for h in range(8, 24):
        loop.hour(0.5, seed=h)
        if not loop.rollout.pending and not loop.rollout_active():
            break
    assert registry.aliases(MODEL)["production"] == 2
    after = loop.hour(0.5, seed=99)
    assert after.accuracy > 0.95 and set(after.versions) == {2}

    story = [e["action"] for e in reversed(registry.history(MODEL, limit=100))]
    expected = [
        "pipeline.run.created",
        "pipeline.dataset.snapshot",
        "pipeline.validation.passed",
        "pipeline.gate.passed",
        "version.register",
        "pipeline.rollout.started",
        "pipeline.run.succeeded",
        "rollout.complete",  # shadow period passed with guards holding
        "rollout.advance",  # canary steps
        "rollout.promote",
    ]
    positions = [story.index(a, story.index("pipeline.run.created")) for a in expected]
    assert positions == sorted(positions), story

    # Poisoned labels: stopped at validation, nothing registered, production unchanged.
    loop.poison_next = 0.3
    clock.advance(7 * 3600)
    outcome = loop.service.retrain(loop.pipeline.name, actor="test")
    poisoned = loop.runner.get(outcome.run_id or "")
    assert poisoned.status == "rejected"
    assert poisoned.step("validate").status == "failed"
    assert poisoned.step("train").status == "pending"
    failed = [c["name"] for c in poisoned.reports["validate"]["checks"] if not c["passed"]]
    assert failed == ["label_flips"]
    assert registry.aliases(MODEL)["production"] == 2
    assert [v.version for v in registry.versions(MODEL)] == [1, 2]
    assert registry.history(MODEL, limit=1)[0]["action"] == "pipeline.run.rejected"

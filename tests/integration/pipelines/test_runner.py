"""The runner on a real registry: records, registers with lineage, retries, resumes, gates."""

from __future__ import annotations

import atexit
import logging
from typing import Any

import pandas as pd
import pytest
from pipelines_world import T0, FakeRollout, loader, make_pipeline, world

from mloop._clock import ManualClock
from mloop.config import Settings, load_settings
from mloop.errors import Unavailable
from mloop.pipelines import Runner, TriggerService, load_snapshot
from mloop.registry import Registry


def test_a_first_run_snapshots_trains_registers_and_hands_over(registry: Registry) -> None:
    rollout = FakeRollout()
    runner = Runner(registry, rollout=rollout)
    data = world(600, 0, T0)
    run = runner.run(make_pipeline(loader(data)))
    assert run.status == "succeeded", run.error
    assert [s.status for s in run.steps] == ["succeeded"] * 6
    assert all(s.duration_s is not None for s in run.steps)
    assert run.dataset is not None and run.model_version == 1
    mv = registry.get("churn@challenger")
    assert mv.lineage["dataset_sha256"] == run.dataset
    assert mv.tags["pipeline_run"] == run.id
    # The snapshot is the data, content-addressed.
    stored = load_snapshot(registry.artifacts, run.dataset)
    pd.testing.assert_frame_equal(stored, data.reset_index(drop=True), check_dtype=False)
    # The first model has nothing to roll out against: the step says how to promote it.
    assert rollout.started == []
    assert "mloop alias set churn production 1" in run.step("rollout").logs[0]
    actions = [e["action"] for e in registry.history("churn")]
    assert "pipeline.run.succeeded" in actions and "pipeline.gate.passed" in actions


def test_the_gate_keeps_a_worse_challenger_out(registry: Registry) -> None:
    rollout = FakeRollout()
    runner = Runner(registry, rollout=rollout)
    data = world(600, 0, T0)
    first = runner.run(make_pipeline(loader(data)))
    registry.set_alias("churn", "production", first.model_version or 0)

    def bad_train(d: Any) -> Any:
        from sklearn.dummy import DummyClassifier

        return DummyClassifier(strategy="most_frequent").fit(d.X, d.y)

    second = runner.run(make_pipeline(loader(data), train=bad_train))
    assert second.status == "rejected"
    assert "beats_champion" in (second.error or "")
    gate = second.reports["gate"]
    assert any(c["name"] == "beats_champion" and not c["passed"] for c in gate["checks"])
    assert [v.version for v in registry.versions("churn")] == [1]
    assert rollout.started == []
    # A better challenger is handed to the rollout policy.
    third = runner.run(make_pipeline(loader(world(900, 9, T0))))
    assert third.status == "succeeded", third.error
    assert rollout.started == [("churn", 2, "shadow-then-canary", {})]


def test_retryable_errors_are_retried_with_backoff(registry: Registry) -> None:
    data = world(400, 1, T0)
    calls = {"n": 0}

    def flaky(window: Any) -> pd.DataFrame:
        calls["n"] += 1
        if calls["n"] < 3:
            raise Unavailable("warehouse is warming up")
        return loader(data)(window)

    slept: list[float] = []
    runner = Runner(registry, sleep=slept.append)
    run = runner.run(make_pipeline(flaky, max_attempts=3))
    assert run.status == "succeeded"
    assert slept == [2.0, 4.0]
    assert run.step("snapshot").attempts == 3
    assert any("retrying" in line for line in run.step("snapshot").logs)


def test_a_restarted_runner_continues_from_the_last_completed_step(registry: Registry) -> None:
    data = world(400, 2, T0)
    loads = {"n": 0}

    def counting(window: Any) -> pd.DataFrame:
        loads["n"] += 1
        return loader(data)(window)

    class Crash(BaseException):
        """Stands in for the process dying mid-step."""

    def crashing_train(d: Any) -> Any:
        raise Crash

    runner = Runner(registry)
    run_id = runner.create(make_pipeline(counting, train=crashing_train))
    with pytest.raises(Crash):
        runner.execute(make_pipeline(counting, train=crashing_train), run_id)
    crashed = runner.get(run_id)
    assert crashed.status == "running" and crashed.step("train").status == "running"

    fresh = Runner(Registry(registry.settings, clock=registry.clock))
    (resumed,) = fresh.resume({"churn-retrain": make_pipeline(counting)})
    assert resumed.id == run_id and resumed.status == "succeeded"
    assert loads["n"] == 1  # the snapshot step was not repeated
    assert resumed.step("train").attempts == 2


def test_user_errors_fail_the_run_with_the_traceback_in_the_log(registry: Registry) -> None:
    def broken(d: Any) -> Any:
        raise ValueError("bad hyperparameter")

    run = Runner(registry).run(make_pipeline(loader(world(300, 3, T0)), train=broken))
    assert run.status == "failed" and "bad hyperparameter" in (run.error or "")
    assert any("Traceback" in line for line in run.step("train").logs)


def test_an_alert_storm_starts_one_run(registry: Registry, clock: ManualClock) -> None:
    runner = Runner(registry)
    service = TriggerService(runner, [make_pipeline(loader(world(300, 4, T0)))])
    outcomes = []
    for i in range(20):
        alert = {"model": "churn", "rule": f"rule-{i % 4}", "kind": "firing", "metric": "accuracy"}
        outcomes += service.on_alert(alert)
        clock.advance(5)
    assert sum(o.fired for o in outcomes) == 1
    assert len(runner.list_runs()) == 1
    assert runner.runs.trigger_state("churn-retrain").running is None


def test_runs_are_mirrored_to_mlflow(
    registry: Registry, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow")
    # MLflow 3 keeps the file: store behind an opt-in; it is the one that needs no server.
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    from mloop.pipelines import MlflowTracker

    uri = (tmp_path / "mlruns").as_uri()
    run = Runner(registry, tracker=MlflowTracker(uri)).run(make_pipeline(loader(world(300, 5, T0))))
    tracked = run.metrics["tracker_run_id"]
    mlrun = MlflowClient(tracking_uri=uri).get_run(tracked)
    assert mlrun.data.tags["mloop.run_id"] == run.id
    assert mlrun.data.tags["mloop.dataset_sha256"] == run.dataset
    assert "accuracy" in mlrun.data.metrics


@pytest.mark.postgres
def test_runs_and_trigger_state_on_postgresql(postgres_url: str, tmp_path: Any) -> None:
    settings: Settings = load_settings(env={}, home=tmp_path / "home", database_url=postgres_url)
    clock = ManualClock(T0 + 86400)
    registry = Registry(settings, clock=clock)
    runner = Runner(registry, rollout=FakeRollout())
    service = TriggerService(runner, [make_pipeline(loader(world(300, 6, T0)))])
    fired = [service.on_alert({"model": "churn", "rule": "r", "metric": "psi"}) for _ in range(3)]
    assert sum(o.fired for batch in fired for o in batch) == 1
    (run,) = runner.list_runs()
    assert run.status == "succeeded" and registry.get("churn@challenger").version == 1
    registry.store.dispose()


def test_the_same_pipeline_runs_as_a_prefect_flow(registry: Registry) -> None:
    pytest.importorskip("prefect", reason="install the 'prefect' extra to test the Prefect flow")
    from mloop.pipelines import as_prefect_flow

    runner = Runner(registry)
    flow = as_prefect_flow(runner, make_pipeline(loader(world(300, 10, T0))))
    result = flow()
    # Prefect stops its ephemeral server at interpreter exit and logs to a stream pytest
    # has closed by then; keep that shutdown quiet (atexit runs this before Prefect's hook).
    atexit.register(setattr, logging, "raiseExceptions", False)
    assert result["status"] == "succeeded"

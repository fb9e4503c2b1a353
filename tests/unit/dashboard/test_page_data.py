"""The dashboard's page data: the library's numbers regrouped, never recomputed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from mloop._clock import ManualClock
from mloop.config import Settings
from mloop.dashboard import (
    Recent,
    Sources,
    alias_history,
    compare_versions,
    contract_diff,
    latency_series,
    latency_step,
    model_detail,
    models_overview,
    monitor_view,
    rollout_view,
    triggered_runs,
    version_detail,
    window_series,
)
from mloop.errors import InvalidInput, NotFound
from mloop.monitor.live import Monitor
from mloop.registry import Registry
from mloop.rollout import (
    CanaryPolicy,
    Guard,
    InMemoryObservations,
    MemoryTraffic,
    Rollouts,
    Totals,
    TrafficRecorder,
)


@pytest.fixture
def registry(settings: Settings) -> Registry:
    x, y = load_iris(return_X_y=True, as_frame=True)
    reg = Registry(settings)
    for c, acc in ((1.0, 0.95), (0.05, 0.81)):
        reg.register(
            LogisticRegression(C=c, max_iter=300).fit(x, y),
            "iris",
            training_data=x,
            metrics={"accuracy": acc},
            params={"C": c},
            tags={"owner": "ml"},
        )
    reg.set_alias("iris", "production", 1, actor="ana", reason="first launch")
    return reg


def _sources(registry: Registry, **kwargs: Any) -> Sources:
    return Sources(registry=registry, monitor=Monitor(registry.settings, registry), **kwargs)


def test_models_overview_reads_serving_traffic_and_aliases(registry: Registry) -> None:
    snapshot: Mapping[int, Mapping[str, Any]] = {
        1: {"requests": 90, "errors": 9, "p50_ms": 2.0, "p99_ms": 8.0},
        2: {"requests": 30, "errors": 0, "p50_ms": 3.0, "p99_ms": 12.0},
    }
    sources = _sources(registry, traffic=lambda name: snapshot, traffic_window_s=60.0)
    [row] = models_overview(sources)
    assert row["name"] == "iris"
    assert row["aliases"] == {"production": 1}
    assert row["serving_version"] == 1
    assert row["request_rate"] == pytest.approx(120 / 60)
    assert row["error_rate"] == pytest.approx(9 / 120)
    # Latency is the busiest version's, as serving measured it.
    assert (row["p50_ms"], row["p99_ms"]) == (2.0, 8.0)
    assert row["drift"]["status"] == "no traffic"
    assert row["last_change"]["action"] == "alias.set"


def test_model_detail_has_versions_metrics_and_who_moved_which_alias(registry: Registry) -> None:
    data = model_detail(_sources(registry), "iris")
    assert [v["version"] for v in data["versions"]] == [1, 2]
    assert data["metric_names"] == ["accuracy"]
    assert [v["metrics"]["accuracy"] for v in data["versions"]] == [0.95, 0.81]
    [move] = data["alias_history"]
    assert move == {
        "at": move["at"],
        "actor": "ana",
        "alias": "production",
        "from": None,
        "to": 1,
        "reason": "first launch",
    }


def test_unknown_model_is_not_found(registry: Registry) -> None:
    with pytest.raises(NotFound):
        model_detail(_sources(registry), "nope")


def test_version_detail_lineage_is_never_empty_and_contract_is_the_registered_one(
    registry: Registry,
) -> None:
    data = version_detail(_sources(registry), "iris", 1)
    assert data["lineage"]
    assert [c["name"] for c in data["contract"]["columns"]][:1] == ["sepal length (cm)"]
    assert data["profile"]["features"][0]["n"] == 150
    assert "iris@production" in data["serves"]
    assert any(e["action"] == "alias.set" for e in data["audit"])


def test_compare_marks_what_changed(registry: Registry) -> None:
    data = compare_versions(_sources(registry), "iris", 1, 2)
    assert data["metrics"] == [{"key": "accuracy", "a": 0.95, "b": 0.81, "same": False}]
    assert data["tags"] == [{"key": "owner", "a": "ml", "b": "ml", "same": True}]
    assert data["contract"] == []


def test_contract_diff_lists_added_removed_and_changed_columns() -> None:
    a = {"columns": [{"name": "x", "kind": "numeric", "min": 0, "max": 1}, {"name": "gone"}]}
    b = {"columns": [{"name": "x", "kind": "numeric", "min": 0, "max": 5}, {"name": "new"}]}
    assert contract_diff(a, b) == [
        {"column": "gone", "change": "removed"},
        {"column": "new", "change": "added"},
        {"column": "x", "change": "max", "from": 1, "to": 5},
    ]


def test_alias_history_skips_other_events() -> None:
    events = [
        {"at": 2.0, "actor": "ci", "action": "rollout.promote", "details": {"candidate": 3}},
        {
            "at": 1.0,
            "actor": "bo",
            "action": "alias.remove",
            "details": {"alias": "staging", "from": 2, "to": None},
        },
    ]
    assert alias_history(events) == [
        {"at": 1.0, "actor": "bo", "alias": "staging", "from": 2, "to": None, "reason": ""}
    ]


def test_window_series_regroups_status_windows_per_chart() -> None:
    def window(
        start: float, effect: float | None, counts: list[int], labelled: int
    ) -> dict[str, Any]:
        features = {} if effect is None else {"x": {"effect": effect, "threshold": 0.2}}
        return {
            "start": start,
            "rows": sum(counts),
            "labelled": labelled,
            "features": features,
            "performance": {"accuracy": 0.9} if labelled else {},
            "estimated_performance": {"accuracy": 0.85, "n": 10.0},
            "missing_rate": 0.0,
            "out_of_contract_rate": 0.1,
            "prediction_drift_report": {
                "columns": [{"labels": ["a", "b"], "current_counts": counts}]
            },
        }

    series = window_series([window(0.0, 0.1, [3, 1], 0), window(60.0, None, [0, 0], 2)])
    assert series["times"] == [0.0, 60.0]
    assert series["features"]["x"] == {"effect": [0.1, None], "threshold": [0.2, None]}
    assert series["predictions"] == {"a": [0.75, None], "b": [0.25, None]}
    # Counts ("n") are not a performance line; labels have their own chart.
    assert series["performance"] == {
        "accuracy": {"realized": [None, 0.9], "estimated": [0.85, 0.85]}
    }
    assert series["labelled"] == [0, 2]
    assert series["out_of_contract_rate"] == [0.1, 0.1]


def test_rollout_view_values_guards_with_the_controllers_observations(registry: Registry) -> None:
    clock = ManualClock(1000.0)
    rollouts = Rollouts(registry, clock=clock)
    policy = CanaryPolicy(
        steps=(10.0, 100.0), guards=(Guard("error_rate", "<", 0.05),), min_requests=1
    )
    rollouts.deploy("iris:2", policy, actor="ana")
    observations = InMemoryObservations(clock=clock)
    for i in range(20):
        observations.record_request("iris", 2, 5.0, error=i == 0)
        observations.record_request("iris", 1, 4.0)
    data = rollout_view(_sources(registry, observations=observations), "iris")
    assert data["rollout"]["candidate"] == 2 and data["rollout"]["active"]
    [guard] = data["guards"]
    assert guard["metric"] == "error_rate" and guard["threshold"] == 0.05
    assert guard["value"] == pytest.approx(1 / 20)
    assert guard["holds"] is False  # 5 % errors breaks "error_rate < 0.05"
    assert [e["action"] for e in data["timeline"]] == ["create"]
    rollouts.command("iris", "rollback", actor="bo")
    after = rollout_view(_sources(registry, observations=observations), "iris")
    assert after["rollout"]["phase"] == "rolled_back"
    assert [e["action"] for e in after["timeline"]] == ["create", "rollback"]
    assert after["timeline"][-1]["actor"] == "bo"


def test_rollout_latency_is_each_sides_totals_per_interval_from_the_fleets_tallies(
    registry: Registry,
) -> None:
    clock = ManualClock(1_000_020.0)  # 20 s into a minute
    rollouts = Rollouts(registry, clock=clock)
    rollouts.deploy("iris:2", CanaryPolicy(steps=(10.0, 100.0)), actor="ana")
    counts, recorder = MemoryTraffic(), TrafficRecorder(clock)
    for _ in range(20):
        recorder.record("iris", 1, 4.0, ok=True)
    recorder.record("iris", 2, 9.0, ok=True)
    clock.advance(15)  # the next 5 s interval, and one more minute of stable traffic below
    for _ in range(10):
        recorder.record("iris", 1, 80.0, ok=True)
    recorder.record("iris", 1, 50.0, ok=False)  # failures are not timed
    recorder.flush_to(counts, now=clock.now())
    sources = _sources(registry, traffic_counts=counts, recent=Recent(clock=clock))
    latency = rollout_view(sources, "iris")["latency"]
    assert latency["step_s"] == 5  # 15 s of rollout: 5 s intervals
    assert latency["times"] == [1_000_020, 1_000_035]
    stable, candidate = latency["stable"], latency["candidate"]
    assert (stable["version"], candidate["version"]) == (1, 2)
    assert stable["requests"] == [20, 11] and candidate["requests"] == [1, 0]
    # The numbers the guards would read for each interval, by the same percentile.
    assert sum(stable["requests"]) == counts.observe("iris", [1], since=1_000_020)[1].requests
    assert stable["p50_ms"][0] == pytest.approx(4.0, rel=0.15)
    assert stable["p99_ms"][1] == counts.observe("iris", [1], since=1_000_035)[1].p99_ms
    assert candidate["p50_ms"] == [pytest.approx(9.0, rel=0.15), None]  # a gap, not a zero
    assert _sources(registry).traffic_counts is None
    assert rollout_view(_sources(registry), "iris")["latency"] is None


def test_latency_intervals_fit_the_span_and_the_ledgers_coarser_old_rows() -> None:
    assert latency_step(15) == 5
    assert latency_step(290) == 5  # 58 points
    assert latency_step(400) == 60  # rows older than 5 min are one per minute
    assert latency_step(3 * 3600) == 300
    assert latency_step(2 * 86400) == 3600  # older than a day: one row per hour
    assert latency_step(14 * 86400) == 21600


def test_latency_series_keeps_each_sides_intervals_aligned() -> None:
    per = {1: {0: Totals(requests=2, p50_ms=1.0, p99_ms=2.0)}, 2: {60: Totals(requests=1)}}
    series = latency_series(per, {"stable": 1, "candidate": 2}, 60)
    assert series["times"] == [0, 60]
    assert series["stable"] == {
        "version": 1,
        "requests": [2, 0],
        "p50_ms": [1.0, None],
        "p99_ms": [2.0, None],
    }
    assert series["candidate"]["requests"] == [0, 1]


def test_the_monitor_shows_the_serving_versions_traffic_unless_told_otherwise(
    registry: Registry,
) -> None:
    sources = _sources(registry)
    default = monitor_view(sources, "iris", since="1h", window="1h")
    assert default["version"] == 1 and default["version_arg"] == "1"  # @production
    assert [c["label"] for c in default["version_choices"]] == [
        "v2",
        "v1 (production, serving)",
        "all versions",
    ]
    assert monitor_view(sources, "iris", since="1h", window="1h", version="2")["version"] == 2
    every = monitor_view(sources, "iris", since="1h", window="1h", version="all")
    assert every["version"] is None and every["version_arg"] == "all"
    with pytest.raises(InvalidInput, match="version='x'"):
        monitor_view(sources, "iris", version="x")
    with pytest.raises(NotFound):
        monitor_view(sources, "iris", version="9")


def test_rollout_view_of_a_model_without_rollouts_is_empty(registry: Registry) -> None:
    assert rollout_view(_sources(registry), "iris") == {
        "name": "iris",
        "rollout": None,
        "timeline": [],
    }
    with pytest.raises(NotFound):
        rollout_view(_sources(registry), "nope")


def test_no_frame_leaks_into_page_data(registry: Registry) -> None:
    data = version_detail(_sources(registry), "iris", 2)
    assert not any(isinstance(v, pd.DataFrame) for v in data.values())


def test_a_firing_alert_names_the_run_it_started() -> None:
    runs = [
        {"id": "later", "trigger": {"kind": "alert", "key": "drift", "at": 50.0}},
        {"id": "first", "trigger": {"kind": "alert", "key": "drift", "at": 11.0}},
        {"id": "manual", "trigger": {"kind": "manual", "key": "", "at": 12.0}},
    ]
    firing = {"kind": "firing", "rule": "drift", "at": 10.0}
    assert triggered_runs(firing, runs) == ["first"]
    assert triggered_runs({**firing, "kind": "resolved"}, runs) == []
    assert triggered_runs({**firing, "rule": "other"}, runs) == []


def test_recent_results_are_shared_until_they_age() -> None:
    clock = ManualClock(0.0)
    recent = Recent(5.0, clock=clock)
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert recent.get("k", compute) == 1
    clock.advance(4.9)
    assert recent.get("k", compute) == 1  # every reader within the TTL gets the same result
    assert recent.get("other", compute) == 2
    clock.advance(0.2)
    assert recent.get("k", compute) == 3


def test_a_failed_computation_is_not_kept() -> None:
    recent = Recent(5.0, clock=ManualClock(0.0))

    def fail() -> int:
        raise NotFound("gone")

    with pytest.raises(NotFound):
        recent.get("k", fail)
    assert recent.get("k", lambda: 7) == 7

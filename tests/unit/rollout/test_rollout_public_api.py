"""The public surface of ``mloop.rollout`` changes only on purpose."""

from __future__ import annotations

import mloop.rollout


def test_public_names() -> None:
    assert mloop.rollout.__all__ == sorted(mloop.rollout.__all__, key=lambda n: (n.upper() != n, n))
    assert set(mloop.rollout.__all__) == {
        "GUARD_METRICS", "TERMINAL_PHASES", "ABPolicy", "Action", "BlueGreenPolicy",
        "CanaryPolicy", "Controller", "DbRouter", "Decision", "Guard", "InMemoryObservations",
        "MemoryTraffic", "MetricSummary", "ObservationSource", "Observations", "Phase", "Policy",
        "RolloutState", "RolloutStore", "Rollouts", "RouteDecision", "RoutingTable",
        "ShadowPolicy", "Strategy", "Totals", "TrafficCounts", "TrafficLedger", "TrafficRecorder",
        "TrafficRouter", "VersionStats", "Verdict",
        "apply_command", "bucket", "guard_metrics",
        "initial_weight", "msprt", "next_step", "parse_duration", "policy_from_dict",
        "policy_to_dict",
    }  # fmt: skip
    for name in mloop.rollout.__all__:
        assert getattr(mloop.rollout, name) is not None

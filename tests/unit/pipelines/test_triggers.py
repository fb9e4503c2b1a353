"""Trigger decisions are pure: cooldown, de-duplication, schedules, new labels, manual runs."""

from __future__ import annotations

import dataclasses
import datetime as dt

from mloop.pipelines import TriggerConfig, TriggerEvent, TriggerState, decide, run_finished

T0 = dt.datetime(2026, 1, 5, 10, 0, tzinfo=dt.UTC).timestamp()


def alert(at: float, rule: str = "acc-low", kind: str = "performance") -> TriggerEvent:
    return TriggerEvent("alert", at, key=rule, details={"kind": kind})


def test_an_alert_storm_starts_one_run() -> None:
    config = TriggerConfig(cooldown_s=3600)
    state = TriggerState()
    fired = 0
    for i in range(50):
        event = alert(T0 + i, rule=f"rule-{i % 3}")
        decision = decide(config, state, T0 + i, event)
        state = decision.state
        fired += decision.fire
    assert fired == 1
    assert state.running is not None


def test_cooldown_holds_after_the_run_finished_and_then_releases() -> None:
    config = TriggerConfig(cooldown_s=3600, dedup_window_s=0)
    first = decide(config, TriggerState(), T0, alert(T0))
    assert first.fire
    done = run_finished(first.state)
    held = decide(config, done, T0 + 600, alert(T0 + 600))
    assert not held.fire and "cooling down" in held.reason
    assert decide(config, done, T0 + 3601, alert(T0 + 3601)).fire


def test_the_same_alert_key_is_deduplicated_within_its_window() -> None:
    config = TriggerConfig(cooldown_s=0, dedup_window_s=86400)
    state = run_finished(decide(config, TriggerState(), T0, alert(T0)).state)
    again = decide(config, state, T0 + 7200, alert(T0 + 7200))
    assert not again.fire and "already started a run" in again.reason
    other = decide(config, state, T0 + 7200, alert(T0 + 7200, rule="drift-high", kind="drift"))
    assert other.fire


def test_alert_kinds_and_switch() -> None:
    only_drift = TriggerConfig(alert_kinds=("drift",))
    assert not decide(only_drift, TriggerState(), T0, alert(T0)).fire
    off = TriggerConfig(on_alert=False)
    assert not decide(off, TriggerState(), T0, alert(T0, kind="drift")).fire


def test_schedule_arms_first_then_fires_once_per_slot() -> None:
    config = TriggerConfig(schedule="0 3 * * *", cooldown_s=0)
    armed = decide(config, TriggerState(), T0, TriggerEvent("schedule", T0))
    assert not armed.fire and armed.state.last_schedule_slot is not None
    same_day = decide(config, armed.state, T0 + 3600, TriggerEvent("schedule", T0 + 3600))
    assert not same_day.fire
    next_slot = T0 + 17 * 3600  # 03:00 the next day
    fired = decide(config, same_day.state, next_slot, TriggerEvent("schedule", next_slot))
    assert fired.fire
    later = decide(
        config, run_finished(fired.state), next_slot + 60, TriggerEvent("schedule", next_slot + 60)
    )
    assert not later.fire


def test_new_labels_fire_when_enough_arrived_since_the_last_run() -> None:
    config = TriggerConfig(min_new_labels=1000, cooldown_s=0)
    state = TriggerState(labels_at_last_run=5000)
    assert not decide(config, state, T0, TriggerEvent("labels", T0, labeled_rows=5999)).fire
    fired = decide(config, state, T0, TriggerEvent("labels", T0, labeled_rows=6000))
    assert fired.fire and fired.state.labels_at_last_run == 6000


def test_manual_ignores_cooldown_but_not_a_run_in_progress() -> None:
    config = TriggerConfig(cooldown_s=86400)
    state = TriggerState(last_started_at=T0)
    assert decide(config, state, T0 + 1, TriggerEvent("manual", T0 + 1)).fire
    busy = dataclasses.replace(state, running="run-1")
    refused = decide(config, busy, T0 + 1, TriggerEvent("manual", T0 + 1))
    assert not refused.fire and "in progress" in refused.reason


def test_a_run_in_progress_for_too_long_is_presumed_dead() -> None:
    config = TriggerConfig(cooldown_s=0, stale_run_s=3600)
    state = TriggerState(last_started_at=T0, running="run-1")
    assert decide(config, state, T0 + 7200, alert(T0 + 7200)).fire


def test_state_round_trips_through_json() -> None:
    state = TriggerState(
        last_started_at=T0,
        running="r",
        last_schedule_slot=T0,
        labels_at_last_run=3,
        alert_keys={"a": T0},
    )
    assert TriggerState.from_dict(state.to_dict()) == state

"""Page data of what happens now: monitor windows, the rollout, alerts and pipeline runs.

The numbers are the library's own: ``Monitor.status`` windows (as ``mloop monitor
status`` prints them), ``Rollouts`` state and history, the rollout guards valued by
``rollout.guard_metrics`` over the same observations the controller reads, the
latency of each side per interval from the same traffic counts (``Totals`` per
interval, read by the same percentile), the alerter's history and the run store.
Here they are only regrouped into series.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mloop.dashboard._sources import Sources
from mloop.errors import InvalidInput
from mloop.pipelines import RunStore
from mloop.rollout import Observations, Rollouts, Totals, VersionStats, guard_metrics

__all__ = [
    "activity",
    "latency_series",
    "latency_step",
    "monitor_view",
    "rollout_view",
    "triggered_runs",
    "window_series",
]

WINDOW_CHOICES = ("5m", "15m", "1h", "6h", "1d")
SINCE_CHOICES = ("1h", "6h", "24h", "7d")
ALL_VERSIONS = "all"
# Interval widths of the rollout latency chart, and the most points it draws.
_LATENCY_STEPS_S = (5, 10, 30, 60, 300, 900, 3600, 21600)
_LATENCY_POINTS = 60


def window_series(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """Regroup ``MonitorStatus.to_dict(detail=True)`` windows into one series per chart."""
    times = [w["start"] for w in windows]
    features: dict[str, dict[str, list[Any]]] = {}
    for i, w in enumerate(windows):
        for name, f in w.get("features", {}).items():
            series = features.setdefault(
                name, {"effect": [None] * len(windows), "threshold": [None] * len(windows)}
            )
            series["effect"][i] = f.get("effect")
            series["threshold"][i] = f.get("threshold")
    labels: list[str] = []
    for w in windows:
        report = w.get("prediction_drift_report") or {}
        for column in report.get("columns", []):
            labels.extend(str(x) for x in column.get("labels", []) if str(x) not in labels)
    predictions: dict[str, list[float | None]] = {k: [None] * len(windows) for k in labels}
    for i, w in enumerate(windows):
        report = w.get("prediction_drift_report") or {}
        for column in report.get("columns", []):
            counts = column.get("current_counts", [])
            total = sum(counts)
            for label, count in zip(column.get("labels", []), counts, strict=False):
                predictions[str(label)][i] = count / total if total else None
    metrics = sorted(
        {k for w in windows for k in (*w["performance"], *w["estimated_performance"])} - {"n"}
    )
    performance = {
        m: {
            "realized": [w["performance"].get(m) for w in windows],
            "estimated": [w["estimated_performance"].get(m) for w in windows],
        }
        for m in metrics
    }
    return {
        "times": times,
        "rows": [w["rows"] for w in windows],
        "labelled": [w["labelled"] for w in windows],
        "features": features,
        "predictions": predictions,
        "performance": performance,
        "missing_rate": [w["missing_rate"] for w in windows],
        "out_of_contract_rate": [w["out_of_contract_rate"] for w in windows],
    }


def monitored_version(sources: Sources, name: str, arg: str) -> int | None:
    """The version whose traffic the Monitor shows: ``""`` the serving one, ``all``: every one."""
    if arg == ALL_VERSIONS:
        return None
    if not arg:  # what a bare name resolves to: the production alias, else the latest
        return sources.registry.get(name).version
    try:
        return int(arg.removeprefix("v"))
    except ValueError:
        raise InvalidInput(
            f"version={arg!r} is not a version; give a number such as 2, or {ALL_VERSIONS!r}."
        ) from None


def version_choices(sources: Sources, name: str) -> list[dict[str, str]]:
    """The Monitor's version picker: every version, newest first, with its aliases; then all."""
    serving = sources.registry.get(name).version
    choices = []
    for mv in sorted(sources.registry.versions(name), key=lambda v: -v.version):
        notes = [*mv.aliases, *(["serving"] if mv.version == serving else [])]
        label = f"v{mv.version}" + (f" ({', '.join(notes)})" if notes else "")
        choices.append({"value": str(mv.version), "label": label})
    return [*choices, {"value": ALL_VERSIONS, "label": "all versions"}]


def monitor_view(
    sources: Sources,
    name: str,
    *,
    since: str = "24h",
    window: str = "1h",
    version: str = "",
) -> dict[str, Any]:
    """The model's monitoring windows and the chart series drawn from them.

    ``version``: the picker's value (``""``: the serving version; ``all``: every version).
    """
    picked = monitored_version(sources, name, version)
    return sources.recent.get(
        ("monitor", name, since, window, picked),
        lambda: _monitor_view(sources, name, since, window, picked),
    )


def _monitor_view(
    sources: Sources, name: str, since: str, window: str, version: int | None
) -> dict[str, Any]:
    status = sources.monitor.status(name, since=since, window=window, version=version)
    data = status.to_dict(detail=True)
    windows = data.pop("windows")
    series = window_series(windows) if windows else None
    for w in windows:  # the full reports were only needed for the series
        w.pop("drift_report", None)
        w.pop("prediction_drift_report", None)
    rows = sum(w["rows"] for w in windows)
    labelled = sum(w["labelled"] for w in windows)
    return {
        **data,
        "since_arg": since,
        "window_arg": window,
        "version_arg": ALL_VERSIONS if version is None else str(version),
        "version_choices": version_choices(sources, name),
        "rows": rows,
        "labelled": labelled,
        "windows": windows,
        "series": series,
    }


def _guards(sources: Sources, state: Any, policy: Any) -> dict[str, Any]:
    """Guard limits of the policy with their values from the controller's observations."""
    limits = [
        {"metric": g.metric, "op": g.op, "threshold": g.threshold}
        for g in getattr(policy, "guards", ())
    ]
    if sources.observations is None or not state.active:
        return {"guards": [*limits], "stable": None, "candidate": None}
    candidate = sources.observations.observe(state.model, [state.candidate], state.step_started_at)
    stable = sources.observations.observe(state.model, [state.stable], state.started_at)
    obs = Observations(
        at=state.updated_at,
        stable=stable.get(state.stable, VersionStats()),
        candidate=candidate.get(state.candidate, VersionStats(ready=False)),
    )
    values = guard_metrics(policy, obs)
    for guard, spec in zip(limits, policy.guards, strict=True):
        value = values.get(spec.metric)
        guard["value"] = value
        # The guard's own comparison (what next_step applies); None: not enough data yet.
        guard["holds"] = None if value is None else spec.holds(value)
    return {
        "guards": limits,
        "stable": obs.stable.to_dict(),
        "candidate": obs.candidate.to_dict(),
    }


def latency_step(span_s: float) -> int:
    """The latency chart's interval: at most ``_LATENCY_POINTS`` of them over ``span_s``.

    Never finer than the ledger keeps old rows (a minute past five minutes, an hour past
    a day), so no interval of an older span is an empty gap between two full ones.
    """
    floor = 3600 if span_s > 86400 else 60 if span_s > 300 else 0
    for step in _LATENCY_STEPS_S:
        if step >= floor and span_s / step <= _LATENCY_POINTS:
            return step
    return _LATENCY_STEPS_S[-1]


def latency_series(
    per_interval: Mapping[int, Mapping[int, Totals]], sides: Mapping[str, int], step_s: int
) -> dict[str, Any]:
    """Regroup ``TrafficCounts.per_interval`` into p50/p99 lines per side (None: no traffic)."""
    times = sorted({start for per in per_interval.values() for start in per})
    out: dict[str, Any] = {"step_s": step_s, "times": times}
    for role, version in sides.items():
        per = per_interval.get(version, {})
        out[role] = {
            "version": version,
            "requests": [per[t].requests if t in per else 0 for t in times],
            "p50_ms": [per[t].p50_ms if t in per else None for t in times],
            "p99_ms": [per[t].p99_ms if t in per else None for t in times],
        }
    return out


def _latency(sources: Sources, state: Any) -> dict[str, Any] | None:
    """Stable vs candidate latency per interval since the rollout started (to its end)."""
    if sources.traffic_counts is None:
        return None
    until = sources.recent.clock.now() if state.active else state.updated_at
    step = latency_step(max(0.0, until - state.started_at))
    sides = {"stable": state.stable, "candidate": state.candidate}
    per = sources.traffic_counts.per_interval(
        state.model, list(sides.values()), state.started_at, step
    )
    return latency_series(per, sides, step)


def rollout_view(sources: Sources, name: str) -> dict[str, Any]:
    """The latest rollout: both sides live, guards with values and limits, the step timeline."""
    rollouts = Rollouts(sources.registry)
    store_latest = rollouts.store.latest(name)
    if store_latest is None:
        sources.registry.versions(name)  # NotFound for an unknown model
        return {"name": name, "rollout": None, "timeline": []}
    state, policy = store_latest
    serving = rollouts.serving(name)
    return {
        "name": name,
        "rollout": {
            **state.to_dict(),
            "active": state.active,
            "serving": serving["serving"] if serving else state.serving(),
            "stable_traffic": 100.0 - state.weight if state.candidate_serves else 100.0,
            "candidate_traffic": state.weight if state.candidate_serves else 0.0,
            "steps": list(getattr(policy, "steps", ())),
        },
        **_guards(sources, state, policy),
        "latency": _latency(sources, state),
        "timeline": [e for e in rollouts.history(name) if e["rollout_id"] == state.id],
    }


def activity(sources: Sources, *, limit: int = 50) -> dict[str, Any]:
    """Alert events (what fired, what it triggered) and pipeline runs with their steps."""
    alerts = [] if sources.alerter is None else sources.alerter.history(limit)
    runs = RunStore(sources.registry.store).list_runs(limit=limit)
    out_runs = []
    for run in runs:
        data = run.to_dict()
        stopped = next((s for s in run.steps if s.status in ("failed",)), None)
        data["stopped_because"] = (
            run.error or (stopped.error if stopped else None) or _rejection(run.reports)
        )
        for step in data["steps"]:
            step.pop("logs", None)
        out_runs.append(data)
    for alert in alerts:
        alert["triggered"] = triggered_runs(alert, out_runs)
    return {"alerts": alerts, "runs": out_runs}


def triggered_runs(alert: dict[str, Any], runs: list[dict[str, Any]]) -> list[str]:
    """Ids of the runs this firing alert started (their trigger names its rule, at its time)."""
    if alert.get("kind") != "firing":
        return []
    return [
        r["id"]
        for r in runs
        if r["trigger"].get("kind") == "alert"
        and r["trigger"].get("key") == alert.get("rule")
        and float(r["trigger"].get("at") or 0.0) >= float(alert.get("at") or 0.0)
    ][-1:]  # runs are newest first: the first run after the event


def _rejection(reports: Any) -> str | None:
    for name in ("validate", "gate"):
        report = (reports or {}).get(name)
        if isinstance(report, dict) and report.get("passed") is False:
            return f"{name}: {report.get('reason') or report.get('summary') or 'did not pass'}"
    return None

"""Page data of what happens now: monitor windows, the rollout, alerts and pipeline runs.

The numbers are the library's own: ``Monitor.status`` windows (as ``mloop monitor
status`` prints them), ``Rollouts`` state and history, the rollout guards valued by
``rollout.guard_metrics`` over the same observations the controller reads, the
alerter's history and the run store. Here they are only regrouped into series.
"""

from __future__ import annotations

from typing import Any

from mloop.dashboard._sources import Sources
from mloop.pipelines import RunStore
from mloop.rollout import Observations, Rollouts, VersionStats, guard_metrics

__all__ = ["activity", "monitor_view", "rollout_view", "triggered_runs", "window_series"]

WINDOW_CHOICES = ("5m", "15m", "1h", "6h", "1d")
SINCE_CHOICES = ("1h", "6h", "24h", "7d")


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


def monitor_view(
    sources: Sources,
    name: str,
    *,
    since: str = "24h",
    window: str = "1h",
    version: int | None = None,
) -> dict[str, Any]:
    """The model's monitoring windows and the chart series drawn from them."""
    return sources.recent.get(
        ("monitor", name, since, window, version),
        lambda: _monitor_view(sources, name, since, window, version),
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

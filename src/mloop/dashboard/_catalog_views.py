"""Page data of what the registry knows: models, one model, one version, two compared.

Each function returns plain JSON-ready data read from the registry, the rollout
store, the run store and the live serving stats; the pages render it and
``/ui/api/...`` returns it as is, so a page and its live refresh show the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mloop.dashboard._sources import Sources
from mloop.errors import MloopError
from mloop.pipelines import RunStore
from mloop.rollout import Rollouts

__all__ = [
    "alias_history",
    "compare_versions",
    "contract_diff",
    "model_detail",
    "models_overview",
    "version_detail",
]


def _traffic(sources: Sources, name: str) -> Mapping[int, Mapping[str, Any]]:
    return {} if sources.traffic is None else sources.traffic(name)


def _busiest(per_version: Mapping[int, Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The stats of the version that answered most requests in the window."""
    if not per_version:
        return None
    return max(per_version.values(), key=lambda s: int(s.get("requests") or 0))


def _open_alerts(sources: Sources, name: str) -> list[dict[str, Any]]:
    if sources.alerter is None:
        return []
    opened = []
    for rule in sources.alerter.rules:
        if rule.model != name:
            continue
        state = sources.alerter.state(rule.name)
        if state.status == "firing":
            opened.append({"rule": rule.name, "metric": rule.metric, "value": state.last_value})
    return opened


def _drift_now(sources: Sources, name: str) -> dict[str, Any]:
    """The monitor's last window of the past hour: drift share and drifted features."""
    try:
        status = sources.recent.get(
            ("drift-now", name), lambda: sources.monitor.status(name, since="1h", window="1h")
        )
    except MloopError as exc:
        return {"status": "unknown", "reason": exc.message}
    last = status.total
    if last is None or last.rows == 0:
        return {"status": "no traffic", "rows": 0}
    if last.drift is None:
        return {"status": "no reference", "rows": last.rows}
    drifted = last.drift.drifted_columns
    return {
        "status": "drift" if drifted else "ok",
        "rows": last.rows,
        "drift_share": last.drift_share,
        "drifted_features": drifted,
    }


def models_overview(sources: Sources, *, with_drift: bool = True) -> list[dict[str, Any]]:
    """One row per registered model: what serves, its traffic, drift, alerts, last change."""
    rollouts = Rollouts(sources.registry)
    rows = []
    for model in sources.registry.list_models():
        per_version = _traffic(sources, model.name)
        busiest = _busiest(per_version)
        requests = sum(int(s.get("requests") or 0) for s in per_version.values())
        errors = sum(int(s.get("errors") or 0) for s in per_version.values())
        last = sources.registry.history(model.name, limit=1)
        rows.append(
            {
                "name": model.name,
                "aliases": dict(sorted(model.aliases.items())),
                "latest_version": model.latest_version,
                "serving_version": model.aliases.get("production"),
                "rollout": rollouts.serving(model.name),
                "request_rate": requests / sources.traffic_window_s,
                "requests": requests,
                "error_rate": errors / requests if requests else None,
                "p50_ms": None if busiest is None else busiest.get("p50_ms"),
                "p99_ms": None if busiest is None else busiest.get("p99_ms"),
                "drift": _drift_now(sources, model.name) if with_drift else None,
                "open_alerts": _open_alerts(sources, model.name),
                "last_change": last[0] if last else None,
            }
        )
    return rows


def alias_history(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Alias moves from audit events (newest first): who, when, which alias, from, to, why."""
    moves = []
    for event in events:
        if event["action"] not in ("alias.set", "alias.remove"):
            continue
        details = event.get("details") or {}
        moves.append(
            {
                "at": event["at"],
                "actor": event["actor"],
                "alias": details.get("alias"),
                "from": details.get("from"),
                "to": details.get("to"),
                "reason": details.get("reason") or "",
            }
        )
    return moves


def model_detail(sources: Sources, name: str) -> dict[str, Any]:
    """Versions with metrics (the chart plots them over versions) and the alias history."""
    versions = sources.registry.versions(name)  # NotFound names the known models
    metric_names = sorted({m for v in versions for m in v.metrics})
    return {
        "name": name,
        "aliases": sources.registry.aliases(name),
        "metric_names": metric_names,
        "versions": [
            {
                "version": v.version,
                "aliases": list(v.aliases),
                "flavor": v.flavor,
                "task": v.task,
                "metrics": dict(v.metrics),
                "created_at": v.created_at,
                "created_by": v.created_by,
                "description": v.description,
            }
            for v in versions
        ],
        "alias_history": alias_history(sources.registry.history(name)),
        "rollout": Rollouts(sources.registry).serving(name),
    }


def _concerns(event: Mapping[str, Any], version: int) -> bool:
    details = event.get("details") or {}
    return version in (
        details.get("version"),
        details.get("to"),
        details.get("from"),
        details.get("candidate"),
        details.get("stable"),
    )


def version_detail(sources: Sources, name: str, version: int) -> dict[str, Any]:
    """Lineage, contract, reference profile, gate results, where it serves, audit trail."""
    mv = sources.registry.get(f"{name}:{version}")
    summary = mv.summary()
    lineage = dict(mv.lineage)
    if not lineage:  # never an empty box: say what was not recorded
        lineage = {"recorded": "nothing: registered without training data or a git checkout"}
    runs = [
        r
        for r in RunStore(sources.registry.store).list_runs(limit=200)
        if r.model == name and r.model_version == version
    ]
    gate = [
        {"run": r.id, "pipeline": r.pipeline, "status": r.status, "gate": r.reports.get("gate")}
        for r in runs
    ]
    rollout = Rollouts(sources.registry).serving(name)
    serves = [f"{name}@{a}" for a in mv.aliases]
    if rollout is not None and version in (rollout["stable"], rollout["candidate"]):
        serves.append(rollout["serving"])
    return {
        **summary,
        "lineage": lineage,
        "contract": dict(mv.schema_dict) if mv.schema_dict is not None else None,
        "profile": _profile_summary(mv.profile_dict),
        "gate": gate,
        "serves": serves,
        "audit": [e for e in sources.registry.history(name) if _concerns(e, version)],
    }


def _profile_summary(profile: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The stored reference profile's per-feature summary (rows, missing, range, categories)."""
    if profile is None:
        return None
    features = []
    for feature in profile.get("features", {}).values():
        n = int(feature.get("n") or 0)
        features.append(
            {
                "name": feature["name"],
                "kind": feature["kind"],
                "n": n,
                "missing_rate": (int(feature.get("missing") or 0) / n) if n else None,
                "mean": feature.get("mean"),
                "std": feature.get("std"),
                "min": feature.get("min"),
                "max": feature.get("max"),
                "categories": dict(
                    zip(
                        feature.get("categories", []),
                        feature.get("category_counts", []),
                        strict=False,
                    )
                ),
            }
        )
    prediction = profile.get("prediction") or {}
    return {
        "n": profile.get("n"),
        "features": features,
        "prediction": dict(
            zip(
                prediction.get("categories", []),
                prediction.get("category_counts", []),
                strict=False,
            )
        ),
        "performance": dict(profile.get("performance", {})),
    }


def contract_diff(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Columns added, removed or changed (kind, range, categories) from contract ``a`` to ``b``."""
    cols_a = {c["name"]: c for c in (a or {}).get("columns", [])}
    cols_b = {c["name"]: c for c in (b or {}).get("columns", [])}
    changes = []
    for name in sorted(cols_a.keys() | cols_b.keys()):
        before, after = cols_a.get(name), cols_b.get(name)
        if before is None or after is None:
            changes.append({"column": name, "change": "added" if before is None else "removed"})
            continue
        for key in ("kind", "nullable", "min", "max", "categories"):
            if before.get(key) != after.get(key):
                changes.append(
                    {"column": name, "change": key, "from": before.get(key), "to": after.get(key)}
                )
    return changes


def _side_by_side(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {"key": k, "a": a.get(k), "b": b.get(k), "same": a.get(k) == b.get(k)}
        for k in sorted(a.keys() | b.keys())
    ]


def compare_versions(sources: Sources, name: str, a: int, b: int) -> dict[str, Any]:
    """Metrics, params and tags of two versions side by side, and their contract diff."""
    va = sources.registry.get(f"{name}:{a}")
    vb = sources.registry.get(f"{name}:{b}")
    return {
        "name": name,
        "a": a,
        "b": b,
        "metrics": _side_by_side(va.metrics, vb.metrics),
        "params": _side_by_side(va.params, vb.params),
        "tags": _side_by_side(va.tags, vb.tags),
        "contract": contract_diff(va.schema_dict, vb.schema_dict),
    }

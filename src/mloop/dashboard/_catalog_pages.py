"""The screens of what the registry knows: models, one model, one version, two compared.

Each renders one page-data dict of ``_catalog_views``; the same dict is the page's
JSON twin under ``/ui/api/…``, which ``static/dashboard.js`` polls to redraw the
values marked ``live`` and the charts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mloop.dashboard._html import (
    NONE,
    chart,
    compact,
    esc,
    fmt,
    kv,
    link,
    live,
    model_crumbs,
    model_tabs,
    model_url,
    page,
    table,
)

__all__ = ["compare_page", "model_page", "models_page", "version_page"]


def _aliases(aliases: Mapping[str, int]) -> str:
    return " ".join(f'<span class="tag">@{esc(a)}→v{esc(v)}</span>' for a, v in aliases.items())


def _drift_badge(drift: Mapping[str, Any] | None) -> str:
    if not drift:
        return NONE
    status = drift.get("status", "unknown")
    css = {"ok": "ok", "drift": "bad"}.get(status, "muted")
    detail = ", ".join(drift.get("drifted_features") or [])
    return f'<span class="badge {css}">{esc(status)}</span> {esc(detail)}'


def models_page(models: list[dict[str, Any]]) -> str:
    """Models: what serves, traffic, latency, errors, drift, alerts, last change."""
    rows = []
    for i, m in enumerate(models):
        name = m["name"]
        split = "100% v" + str(m["serving_version"]) if m["serving_version"] else "not serving"
        if m["rollout"]:
            split = m["rollout"]["serving"]
        alerts = ", ".join(a["rule"] for a in m["open_alerts"]) or "none"
        change = m["last_change"]
        changed = (
            f"{fmt(change['at'], 'time')} {change['action']} by {change['actor']}"
            if change
            else NONE
        )
        rows.append(
            [
                link(model_url(name), name),
                _aliases(m["aliases"]) or '<span class="muted">no alias</span>',
                esc(f"v{m['serving_version']}" if m["serving_version"] else NONE),
                esc(split),
                live(f"{i}.request_rate", m["request_rate"], "rate"),
                live(f"{i}.p50_ms", m["p50_ms"], "ms")
                + " / "
                + live(f"{i}.p99_ms", m["p99_ms"], "ms"),
                live(f"{i}.error_rate", m["error_rate"], "pct"),
                _drift_badge(m["drift"]),
                esc(alerts),
                esc(changed),
                link(model_url(name) + "/monitor", "monitor")
                + " "
                + link(model_url(name) + "/rollout", "rollout"),
            ]
        )
    body = table(
        [
            "Model",
            "Aliases",
            "Serving",
            "Traffic split",
            "Request rate",
            "p50 / p99",
            "Errors",
            "Drift (last hour)",
            "Open alerts",
            "Last change",
            "",
        ],
        rows,
        empty="No models registered yet: register one with mloop register model.skops --name churn "
        "--training-data train.parquet --alias production.",
    )
    return page("Models", body, data=models, api="/ui/api/models")


def model_page(data: dict[str, Any]) -> str:
    """Model: versions with key metrics, the metric-over-versions chart, alias history."""
    name = data["name"]
    metrics = data["metric_names"][:4]
    rows = []
    for v in reversed(data["versions"]):
        base = f"{model_url(name)}/versions/{v['version']}"
        rows.append(
            [
                link(base, f"v{v['version']}"),
                " ".join(f'<span class="tag">@{esc(a)}</span>' for a in v["aliases"]),
                *(esc(fmt(v["metrics"].get(k))) for k in metrics),
                esc(v["flavor"]),
                esc(fmt(v["created_at"], "time")),
                esc(v["created_by"]),
            ]
        )
    versions = [v["version"] for v in data["versions"]]
    compare = ""
    if len(versions) >= 2:
        options_a = "".join(
            f'<option value="{v}"{" selected" if v == versions[-2] else ""}>v{v}</option>'
            for v in versions
        )
        options_b = "".join(
            f'<option value="{v}"{" selected" if v == versions[-1] else ""}>v{v}</option>'
            for v in versions
        )
        compare = (
            f'<form class="inline" method="get" action="{esc(model_url(name))}/compare">'
            f'<label>Compare <select name="a">{options_a}</select></label> '
            f'<label>with <select name="b">{options_b}</select></label> <button>Compare</button></form>'
        )
    history = table(
        ["When", "Who", "Alias", "From", "To", "Why"],
        (
            [
                esc(fmt(h["at"], "time")),
                esc(h["actor"]),
                esc(h["alias"]),
                esc(NONE if h["from"] is None else f"v{h['from']}"),
                esc("removed" if h["to"] is None else f"v{h['to']}"),
                esc(h["reason"]),
            ]
            for h in data["alias_history"]
        ),
        empty=f"No alias was ever set: mloop alias set {name} production <version>.",
    )
    rollout = ""
    if data["rollout"]:
        rollout = f'<p class="banner">{esc(data["rollout"]["serving"])} — {link(model_url(name) + "/rollout", "see the rollout")}</p>'
    body = f"""{model_tabs(name)}
{rollout}
<p>{_aliases(data["aliases"])}</p>
<section><h2>Versions</h2>{compare}
{table(["Version", "Aliases", *metrics, "Flavor", "Registered", "By"], rows, empty="No versions.")}
{chart("metrics", "Metrics over versions", note="One line per metric recorded at registration.") if metrics else '<p class="empty">No metrics recorded: pass metrics={...} to registry.register.</p>'}
</section>
<section><h2>Alias history</h2>{history}</section>"""
    return page(
        name, body, data=data, api=f"/ui/api{model_url(name)[3:]}", crumbs=[("Models", "/ui/")]
    )


def _contract_table(contract: Mapping[str, Any] | None, name: str) -> str:
    if contract is None:
        return f'<p class="empty">No contract: register {esc(name)} with training_data=… to infer one.</p>'
    rows = []
    for c in contract.get("columns", []):
        cats = c.get("categories")
        rows.append(
            [
                esc(c["name"]),
                esc(c["kind"]),
                esc(c.get("dtype")),
                esc("yes" if c.get("nullable") else "no"),
                esc(fmt(c.get("min"))),
                esc(fmt(c.get("max"))),
                esc(", ".join(map(str, cats)) if cats else NONE),
            ]
        )
    return table(
        ["Column", "Kind", "Dtype", "Nullable", "Min", "Max", "Categories"],
        rows,
        empty="No columns.",
    )


def version_page(data: dict[str, Any]) -> str:
    """Version: lineage, contract (with JSON download), reference profile, gate, audit trail."""
    name, version = data["name"], data["version"]
    base = f"{model_url(name)}/versions/{version}"
    lineage = kv(
        {
            k: esc(v if not isinstance(v, (dict, list)) else compact(v))
            for k, v in data["lineage"].items()
        }
    )
    profile = data["profile"]
    if profile is None:
        prof = '<p class="empty">No reference profile: register with training data to monitor drift.</p>'
    else:
        prof = table(
            ["Feature", "Kind", "Rows", "Missing", "Mean", "Std", "Min", "Max", "Categories"],
            (
                [
                    esc(f["name"]),
                    esc(f["kind"]),
                    esc(f["n"]),
                    esc(fmt(f["missing_rate"], "pct")),
                    esc(fmt(f["mean"])),
                    esc(fmt(f["std"])),
                    esc(fmt(f["min"])),
                    esc(fmt(f["max"])),
                    esc(", ".join(f"{k}: {v}" for k, v in f["categories"].items()) or NONE),
                ]
                for f in profile["features"]
            ),
            empty="The profile has no features.",
        )
        if profile["prediction"]:
            prof += (
                "<p>Predicted classes at registration: "
                + esc(", ".join(f"{k}: {v}" for k, v in profile["prediction"].items()))
                + "</p>"
            )
    gate = table(
        ["Run", "Pipeline", "Status", "Gate"],
        (
            [esc(g["run"]), esc(g["pipeline"]), esc(g["status"]), esc(compact(g["gate"]))]
            for g in data["gate"]
        ),
        empty="Not registered by a pipeline run: no gate results (mloop retrain runs the gate).",
    )
    audit = table(
        ["When", "Who", "Action", "Details"],
        (
            [
                esc(fmt(e["at"], "time")),
                esc(e["actor"]),
                esc(e["action"]),
                esc(compact(e["details"])),
            ]
            for e in data["audit"]
        ),
        empty="No audit events mention this version.",
    )
    facts = kv(
        {
            "Flavor": esc(data["flavor"]),
            "Task": esc(data["task"]),
            "Classes": esc(", ".join(map(str, data["classes"])) or NONE),
            "Registered": esc(f"{fmt(data['created_at'], 'time')} by {data['created_by']}"),
            "Serves": esc("; ".join(data["serves"]) or "nowhere (no alias, no rollout)"),
            "Metrics": esc(", ".join(f"{k}={fmt(v)}" for k, v in data["metrics"].items()) or NONE),
            "Params": esc(compact(data["params"]) if data["params"] else NONE),
            "Tags": esc(", ".join(f"{k}={v}" for k, v in data["tags"].items()) or NONE),
        }
    )
    body = f"""{model_tabs(name)}
<section><h2>Summary</h2>{facts}</section>
<section><h2>Lineage</h2>{lineage}</section>
<section><h2>Contract</h2><p>{link(base + "/contract.json", "Download the contract as JSON")}</p>{_contract_table(data["contract"], name)}</section>
<section><h2>Reference profile</h2>{prof}</section>
<section><h2>Gate results</h2>{gate}</section>
<section><h2>Audit trail</h2>{audit}</section>"""
    return page(f"{name} v{version}", body, crumbs=model_crumbs(name))


def compare_page(data: dict[str, Any]) -> str:
    """Two versions side by side: metrics, params, tags, contract diff."""
    name, a, b = data["name"], data["a"], data["b"]

    def side(rows: list[dict[str, Any]], what: str) -> str:
        return table(
            ["", f"v{a}", f"v{b}"],
            (
                [
                    esc(r["key"]),
                    esc(compact(r["a"]) if r["a"] is not None else NONE),
                    ("" if r["same"] else '<span class="changed">')
                    + esc(compact(r["b"]) if r["b"] is not None else NONE)
                    + ("" if r["same"] else "</span>"),
                ]
                for r in rows
            ),
            empty=f"Neither version has {what}.",
        )

    contract = table(
        ["Column", "Change", f"v{a}", f"v{b}"],
        (
            [
                esc(c["column"]),
                esc(c["change"]),
                esc(compact(c.get("from"))),
                esc(compact(c.get("to"))),
            ]
            for c in data["contract"]
        ),
        empty="The contracts are the same.",
    )
    body = f"""{model_tabs(name)}
<section><h2>Metrics</h2>{side(data["metrics"], "metrics")}</section>
<section><h2>Params</h2>{side(data["params"], "params")}</section>
<section><h2>Tags</h2>{side(data["tags"], "tags")}</section>
<section><h2>Contract diff</h2>{contract}</section>"""
    return page(f"{name}: v{a} vs v{b}", body, crumbs=model_crumbs(name))

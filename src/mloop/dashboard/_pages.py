"""The screens: each renders one page-data dict (``_catalog_views``, ``_live_views``).

The same dict is the page's JSON twin under ``/ui/api/…``; values marked ``live`` and
the charts are redrawn from it by ``static/dashboard.js`` while the page is open.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from mloop.dashboard._html import NONE, chart, esc, fmt, kv, link, live, page, table

__all__ = [
    "activity_page",
    "compare_page",
    "error_page",
    "model_page",
    "models_page",
    "monitor_page",
    "rollout_page",
    "version_page",
]


def _m(name: str) -> str:
    return "/ui/models/" + quote(name, safe="")


def _tabs(name: str) -> list[tuple[str, str]]:
    return [("Models", "/ui/"), (name, _m(name))]


def _model_links(name: str) -> str:
    links = [
        link(_m(name), "Versions"),
        link(_m(name) + "/monitor", "Monitor"),
        link(_m(name) + "/rollout", "Rollout"),
    ]
    return '<p class="tabs">' + " ".join(links) + "</p>"


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
                link(_m(name), name),
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
                link(_m(name) + "/monitor", "monitor")
                + " "
                + link(_m(name) + "/rollout", "rollout"),
            ]
        )
    body = table(
        [
            "Model",
            "Aliases",
            "Serving",
            "Traffic split",
            "Requests",
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
        base = f"{_m(name)}/versions/{v['version']}"
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
            f'<form class="inline" method="get" action="{esc(_m(name))}/compare">'
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
        rollout = f'<p class="banner">{esc(data["rollout"]["serving"])} — {link(_m(name) + "/rollout", "see the rollout")}</p>'
    body = f"""{_model_links(name)}
{rollout}
<p>{_aliases(data["aliases"])}</p>
<section><h2>Versions</h2>{compare}
{table(["Version", "Aliases", *metrics, "Flavor", "Registered", "By"], rows, empty="No versions.")}
{chart("metrics", "Metrics over versions", note="One line per metric recorded at registration.") if metrics else '<p class="empty">No metrics recorded: pass metrics={...} to registry.register.</p>'}
</section>
<section><h2>Alias history</h2>{history}</section>"""
    return page(name, body, data=data, api=f"/ui/api{_m(name)[3:]}", crumbs=[("Models", "/ui/")])


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
    base = f"{_m(name)}/versions/{version}"
    lineage = kv(
        {
            k: esc(v if not isinstance(v, (dict, list)) else _compact(v))
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
            [esc(g["run"]), esc(g["pipeline"]), esc(g["status"]), esc(_compact(g["gate"]))]
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
                esc(_compact(e["details"])),
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
            "Params": esc(_compact(data["params"]) if data["params"] else NONE),
            "Tags": esc(", ".join(f"{k}={v}" for k, v in data["tags"].items()) or NONE),
        }
    )
    body = f"""{_model_links(name)}
<section><h2>Summary</h2>{facts}</section>
<section><h2>Lineage</h2>{lineage}</section>
<section><h2>Contract</h2><p>{link(base + "/contract.json", "Download the contract as JSON")}</p>{_contract_table(data["contract"], name)}</section>
<section><h2>Reference profile</h2>{prof}</section>
<section><h2>Gate results</h2>{gate}</section>
<section><h2>Audit trail</h2>{audit}</section>"""
    return page(f"{name} v{version}", body, crumbs=_tabs(name))


def _compact(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_compact(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_compact(v) for v in value) + "]"
    return fmt(value) if isinstance(value, float) else str(value)


def compare_page(data: dict[str, Any]) -> str:
    """Two versions side by side: metrics, params, tags, contract diff."""
    name, a, b = data["name"], data["a"], data["b"]

    def side(rows: list[dict[str, Any]], what: str) -> str:
        return table(
            ["", f"v{a}", f"v{b}"],
            (
                [
                    esc(r["key"]),
                    esc(_compact(r["a"]) if r["a"] is not None else NONE),
                    ("" if r["same"] else '<span class="changed">')
                    + esc(_compact(r["b"]) if r["b"] is not None else NONE)
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
                esc(_compact(c.get("from"))),
                esc(_compact(c.get("to"))),
            ]
            for c in data["contract"]
        ),
        empty="The contracts are the same.",
    )
    body = f"""{_model_links(name)}
<section><h2>Metrics</h2>{side(data["metrics"], "metrics")}</section>
<section><h2>Params</h2>{side(data["params"], "params")}</section>
<section><h2>Tags</h2>{side(data["tags"], "tags")}</section>
<section><h2>Contract diff</h2>{contract}</section>"""
    return page(f"{name}: v{a} vs v{b}", body, crumbs=_tabs(name))


def monitor_page(data: dict[str, Any], windows: tuple[str, ...], spans: tuple[str, ...]) -> str:
    """Monitor: drift per feature over time, predictions, realized vs estimated, data quality."""
    name = data["model"]
    pick_w = "".join(
        f"<option{' selected' if w == data['window_arg'] else ''}>{esc(w)}</option>"
        for w in windows
    )
    pick_s = "".join(
        f"<option{' selected' if s == data['since_arg'] else ''}>{esc(s)}</option>" for s in spans
    )
    picker = (
        f'<form class="inline" method="get"><label>Last <select name="since">{pick_s}</select></label> '
        f'<label>in windows of <select name="window">{pick_w}</select></label> <button>Show</button></form>'
    )
    summary = kv(
        {
            "Reference version": esc(
                f"v{data['reference_version']}" if data["reference_version"] else NONE
            ),
            "Logged predictions": live("rows", data["rows"], "int"),
            "Labels arrived": live("labelled", data["labelled"], "int"),
        }
    )
    if not data["rows"]:
        charts = (
            '<p class="empty">No predictions logged in this span: send traffic to '
            f"POST /models/{esc(name)}/predict (predictions are compacted every few seconds).</p>"
        )
    else:
        label_note = (
            'No labels yet: send feedback with POST /feedback {"request_id": …, "label": …}.'
            if not data["labelled"]
            else "Realized metrics need labels; the bars count labels that arrived per window."
        )
        charts = (
            chart("drift", "Drift effect size per feature (dashed: threshold)")
            + chart("predictions", "Prediction distribution over time (share per class)")
            + chart("performance", "Realized vs estimated performance", note=label_note)
            + chart("labels", "Labels arrived per window")
            + chart("quality", "Missing and out-of-contract rates")
        )
    body = f"""{_model_links(name)}
{picker}
<section><h2>Summary</h2>{summary}</section>
<section class="grid">{charts}</section>"""
    if data.get("compaction_error"):
        body += f'<p class="banner bad">Last compaction failed: {esc(data["compaction_error"])}</p>'
    api = f"/ui/api{_m(name)[3:]}/monitor?since={quote(data['since_arg'])}&window={quote(data['window_arg'])}"
    return page(f"{name}: monitor", body, data=data, api=api, crumbs=_tabs(name))


def rollout_page(data: dict[str, Any]) -> str:
    """Rollout: stable vs candidate, guards with values and limits, timeline, commands."""
    name = data["name"]
    r = data["rollout"]
    if r is None:
        body = (
            _model_links(name)
            + f'<p class="empty">No rollout yet: start one with mloop deploy {esc(name)}:&lt;version&gt; '
            "--strategy canary (or let a retraining pipeline start it).</p>"
        )
        return page(f"{name}: rollout", body, crumbs=_tabs(name))
    sides = []
    for role in ("stable", "candidate"):
        stats = data.get(role) or {}
        sides.append(
            f'<div class="side"><h3>{esc(role.title())} v{esc(r[role])}</h3>'
            + kv(
                {
                    "Traffic": live(f"rollout.{role}_traffic", r[f"{role}_traffic"], "percent"),
                    "Requests": live(f"{role}.requests", stats.get("requests"), "int"),
                    "Error rate": live(f"{role}.error_rate", stats.get("error_rate"), "pct"),
                    "p99": live(f"{role}.p99_ms", stats.get("p99_ms"), "ms"),
                    "Accuracy (labels)": live(f"{role}.accuracy", stats.get("accuracy"))
                    + " ("
                    + live(f"{role}.labels", stats.get("labels"), "int")
                    + ")",
                    "Shadow agreement": live(f"{role}.agreement", stats.get("agreement"), "pct"),
                }
            )
            + "</div>"
        )
    guards = table(
        ["Guard", "Value", "Limit", "Holds"],
        (
            [
                esc(g["metric"]),
                live(f"guards.{i}.value", g.get("value")),
                esc(f"{g['op']} {fmt(g['threshold'])}"),
                live(f"guards.{i}.holds", g.get("holds"), "text"),
            ]
            for i, g in enumerate(data["guards"])
        ),
        empty="This policy has no guards.",
    )
    timeline = table(
        ["When", "Action", "Phase", "Candidate %", "Why", "Who"],
        (
            [
                esc(fmt(e["at"], "time")),
                esc(e["action"]),
                esc(f"{e['from']} → {e['to']}"),
                esc(fmt(e["weight"])),
                esc(e["reason"]),
                esc(e["actor"]),
            ]
            for e in data["timeline"]
        ),
        empty="No steps yet.",
    )
    buttons = ""
    if r["active"]:
        buttons = (
            '<div class="actions">'
            + "".join(
                f'<button data-command="{c}" data-model="{esc(name)}">{c.title()}</button>'
                for c in ("promote", "rollback", "pause", "resume")
            )
            + '<span id="command-result" role="status"></span></div>'
        )
    body = f"""{_model_links(name)}
<p class="banner">{live("rollout.serving", r["serving"], "text")} · phase {live("rollout.phase", r["phase"], "text")}{" · paused" if r["paused"] else ""}</p>
{buttons}
<section class="sides">{"".join(sides)}</section>
<section><h2>Guards</h2>{guards}</section>
<section><h2>Steps</h2><p>Policy steps: {esc(", ".join(f"{s:g}%" for s in r["steps"]) or r["strategy"])}</p>{timeline}</section>"""
    return page(
        f"{name}: rollout",
        body,
        data=data,
        api=f"/ui/api{_m(name)[3:]}/rollout",
        crumbs=_tabs(name),
    )


def activity_page(data: dict[str, Any]) -> str:
    """Alerts (what fired and what it triggered) and pipeline runs (steps, why they stopped)."""
    alerts = table(
        ["When", "Rule", "Model", "Status", "Value", "Details"],
        (
            [
                esc(fmt(a.get("at"), "time")),
                esc(a.get("rule")),
                link(_m(str(a.get("model"))), a.get("model")),
                esc(a.get("status")),
                esc(fmt(a.get("value"))),
                esc(
                    _compact(
                        {
                            k: v
                            for k, v in a.items()
                            if k not in ("id", "at", "rule", "model", "status", "value")
                        }
                    )
                ),
            ]
            for a in data["alerts"]
        ),
        empty="No alert has fired. Alerts are [[alerts]] rules in mloop.toml.",
    )
    runs = []
    for run in data["runs"]:
        steps = " → ".join(f"{s['name']}:{s['status']}" for s in run["steps"])
        runs.append(
            [
                esc(fmt(run["created_at"], "time")),
                esc(run["pipeline"]),
                link(_m(run["model"]), run["model"]),
                esc(_compact(run["trigger"])),
                esc(run["status"]),
                esc(steps),
                esc(
                    run["stopped_because"]
                    or (
                        "registered v" + str(run["model_version"]) if run["model_version"] else NONE
                    )
                ),
            ]
        )
    body = f"""<section><h2>Alerts</h2>{alerts}</section>
<section><h2>Pipeline runs</h2>{table(["When", "Pipeline", "Model", "Trigger", "Status", "Steps", "Outcome"], runs, empty="No pipeline runs yet: mloop retrain <pipeline> starts one.")}</section>"""
    return page("Alerts & runs", body, data=data, api="/ui/api/activity")


def error_page(status: int, message: str, *, login: bool) -> str:
    """An error the reader can act on; with ``login``, a form that stores a key in a cookie."""
    form = ""
    if login:
        form = """<form id="login" class="inline"><label>API key <input type="password" name="api_key" autocomplete="off" required></label> <button>Use this key</button></form>
<p class="note">The key is kept in a same-site, HTTP-only cookie for this dashboard.</p>"""
    return page(f"Error {status}", f'<p class="banner bad">{esc(message)}</p>{form}')

"""The screens of what happens now: the monitor, the rollout, alerts and runs, errors.

Each renders one page-data dict of ``_live_views``; the same dict is the page's
JSON twin under ``/ui/api/…``, which ``static/dashboard.js`` polls to redraw the
values marked ``live`` and the charts.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from mloop.dashboard._html import (
    NONE,
    chart,
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

__all__ = ["activity_page", "error_page", "monitor_page", "rollout_page"]


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
    pick_v = "".join(
        f'<option value="{esc(c["value"])}"{" selected" if c["value"] == data["version_arg"] else ""}>'
        f"{esc(c['label'])}</option>"
        for c in data["version_choices"]
    )
    picker = (
        f'<form class="inline" method="get" aria-label="What to monitor">'
        f'<label>Traffic of <select name="version">{pick_v}</select></label> '
        f'<label>last <select name="since">{pick_s}</select></label> '
        f'<label>in windows of <select name="window">{pick_w}</select></label> <button>Show</button></form>'
    )
    monitored = data["version"]
    summary = kv(
        {
            "Traffic of": esc(f"v{monitored}" if monitored is not None else "all versions"),
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
    body = f"""{model_tabs(name)}
{picker}
<section><h2>Summary</h2>{summary}</section>
<section class="grid">{charts}</section>"""
    if data.get("compaction_error"):
        body += f'<p class="banner bad">Last compaction failed: {esc(data["compaction_error"])}</p>'
    query = "&".join(f"{key}={quote(data[key + '_arg'])}" for key in ("since", "window", "version"))
    api = f"/ui/api{model_url(name)[3:]}/monitor?{query}"
    return page(f"{name}: monitor", body, data=data, api=api, crumbs=model_crumbs(name))


def rollout_page(data: dict[str, Any]) -> str:
    """Rollout: stable vs candidate, guards with values and limits, timeline, commands."""
    name = data["name"]
    r = data["rollout"]
    if r is None:
        body = (
            model_tabs(name)
            + f'<p class="empty">No rollout yet: start one with mloop deploy {esc(name)}:&lt;version&gt; '
            "--strategy canary (or let a retraining pipeline start it).</p>"
        )
        return page(f"{name}: rollout", body, crumbs=model_crumbs(name))
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
    body = f"""{model_tabs(name)}
<p class="banner">{live("rollout.serving", r["serving"], "text")} · phase {live("rollout.phase", r["phase"], "text")}{" · paused" if r["paused"] else ""}</p>
{buttons}
<section class="sides">{"".join(sides)}</section>
{_latency_section(data.get("latency"))}
<section><h2>Guards</h2>{guards}</section>
<section><h2>Steps</h2><p>Policy steps: {esc(", ".join(f"{s:g}%" for s in r["steps"]) or r["strategy"])}</p>{timeline}</section>"""
    return page(
        f"{name}: rollout",
        body,
        data=data,
        api=f"/ui/api{model_url(name)[3:]}/rollout",
        crumbs=model_crumbs(name),
    )


def _latency_section(latency: dict[str, Any] | None) -> str:
    """The per-interval latency chart of both sides (absent without the fleet's tallies)."""
    if latency is None:
        return ""
    note = (
        f"Answered requests per {latency['step_s']} s interval since the rollout started, "
        "every replica's (the tallies each step is judged on); errors are not timed."
    )
    return (
        "<section><h2>Latency</h2>"
        + chart("latency", "p50 and p99 latency, stable vs candidate (dashed: p99)", note=note)
        + "</section>"
    )


def activity_page(data: dict[str, Any]) -> str:
    """Alerts (what fired and what it triggered) and pipeline runs (steps, why they stopped)."""
    alerts = table(
        ["When", "Rule", "Model", "Event", "Value", "Threshold", "Message", "Started run"],
        (
            [
                esc(fmt(a.get("at"), "time")),
                esc(a.get("rule")),
                link(model_url(str(a.get("model"))), a.get("model")),
                esc(a.get("kind")),
                esc(fmt(a.get("value"))),
                esc(f"{a.get('metric')} {fmt(a.get('threshold'))}"),
                esc(a.get("message")),
                esc(", ".join(a.get("triggered", [])) or NONE),
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
                esc(run["id"]),
                esc(fmt(run["created_at"], "time")),
                esc(run["pipeline"]),
                link(model_url(run["model"]), run["model"]),
                esc(f"{run['trigger'].get('kind', '')} {run['trigger'].get('key') or ''}".strip()),
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
<section><h2>Pipeline runs</h2>{table(["Run", "When", "Pipeline", "Model", "Trigger", "Status", "Steps", "Outcome"], runs, empty="No pipeline runs yet: mloop retrain <pipeline> starts one.")}</section>"""
    return page("Alerts & runs", body, data=data, api="/ui/api/activity")


def error_page(status: int, message: str, *, login: bool) -> str:
    """An error the reader can act on; with ``login``, a form that stores a key in a cookie."""
    form = ""
    if login:
        form = """<form id="login" class="inline"><label>API key <input type="password" name="api_key" autocomplete="off" required></label> <button>Use this key</button></form>
<p class="note">The key is kept in a same-site, HTTP-only cookie for this dashboard.</p>"""
    return page(f"Error {status}", f'<p class="banner bad">{esc(message)}</p>{form}')

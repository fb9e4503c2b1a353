"""The Gateway screen: per-deployment quota and 429s, queue, fallbacks, jobs and spend.

Renders ``_gateway_views.gateway_view``'s dict; the same dict is the JSON twin at
``/ui/api/gateway`` that ``static/dashboard.js`` polls to refresh the live values.
"""

from __future__ import annotations

from typing import Any

from mloop.dashboard._html import NONE, esc, fmt, kv, live, page, table

__all__ = ["gateway_page"]

_API = "/ui/api/gateway"
_NO_SPEND = (
    "No spend ledger: spend is recorded when the gateway requires API keys with limits "
    "(mloop gateway limit KEY --budget day=10)."
)


def gateway_page(data: dict[str, Any]) -> str:
    """The gateway's status, or an empty state that says what to configure."""
    status = data["status"]
    if status is None:
        body = f'<p class="empty" id="gateway-empty">{esc(data["error"])}</p>'
        return page("Gateway", body)
    queue = {
        f"Queued ({p})": live(f"status.queue.{p}", n, "int") for p, n in status["queue"].items()
    }
    jobs = status["jobs"] or {}
    summary = kv(
        {
            "Gateway": esc(data["url"]),
            **queue,
            **{f"Jobs {s}": live(f"status.jobs.{s}", n, "int") for s, n in jobs.items()},
        }
    )
    body = f"""<section><h2>Summary</h2>{summary}</section>
<section><h2>Deployments</h2>{_deployments(status["deployments"])}</section>
<section><h2>Requests and fallbacks</h2>{_requests(status)}</section>
<section><h2>Spend</h2>{_spend(status["spend"])}</section>"""
    return page("Gateway", body, data=data, api=_API)


def _deployments(deployments: list[dict[str, Any]]) -> str:
    rows = []
    for i, d in enumerate(deployments):
        q = d["quota"]
        at = f"status.deployments.{i}"
        rows.append(
            [
                esc(d["name"]),
                esc(f"{d['provider']} · {d['model']}"),
                _of(
                    f"{at}.quota.requests_remaining", q["requests_remaining"], q["request_capacity"]
                ),
                _of(f"{at}.quota.tokens_remaining", q["tokens_remaining"], q["token_capacity"]),
                live(f"{at}.quota.inflight", q["inflight"], "int")
                + esc(f" / {q['max_concurrency'] or '∞'}"),
                live(f"{at}.quota.blocked_for_s", q["blocked_for_s"]),
                live(f"{at}.breaker", d["breaker"], "text"),
                live(f"{at}.provider_429", d["provider_429"], "int"),
                live(f"{at}.calls.ok", d["calls"]["ok"], "int"),
                live(f"{at}.fallbacks", d["fallbacks"], "int"),
            ]
        )
    return table(
        [
            "Deployment",
            "Provider · model",
            "Requests left",
            "Tokens left",
            "In flight",
            "Blocked (s)",
            "Breaker",
            "429s",
            "Calls ok",
            "Fallbacks served",
        ],
        rows,
        empty="The gateway has no deployments: add [[deployments]] to its config.",
        caption="Quota as the gateway holds it now (left of the burst it allows)",
    )


def _of(path: str, left: float, capacity: float) -> str:
    if not capacity:
        return esc("unlimited")
    return live(path, left) + esc(f" of {fmt(capacity)}")


def _requests(status: dict[str, Any]) -> str:
    requests = table(
        ["Route", "Ok", "Errors", "Refused"],
        (
            [
                esc(r["route"]),
                live(f"status.requests.{i}.ok", r["ok"], "int"),
                live(f"status.requests.{i}.error", r["error"], "int"),
                live(f"status.requests.{i}.refused", r["refused"], "int"),
            ]
            for i, r in enumerate(status["requests"])
        ),
        empty="No requests yet: point an OpenAI client at the gateway's /v1.",
    )
    fallbacks = table(
        ["Route", "Served by", "Times"],
        (
            [
                esc(f["route"]),
                esc(f["deployment"]),
                live(f"status.fallbacks.{i}.count", f["count"], "int"),
            ]
            for i, f in enumerate(status["fallbacks"])
        ),
        empty="No fallbacks taken: every request was served by its route's first deployment.",
    )
    return requests + fallbacks


def _spend(spend: dict[str, Any] | None) -> str:
    if spend is None:
        return f'<p class="empty">{esc(_NO_SPEND)}</p>'
    if "error" in spend:
        return f'<p class="banner bad">{esc(spend["error"])}</p>'
    out = []
    for period, rows in spend.items():
        cells = (
            [
                esc(r["subject"]),
                esc(r["metric"]),
                live(f"status.spend.{period}.{i}.spent", r["spent"]),
                live(f"status.spend.{period}.{i}.held", r["held"]),
                esc(NONE if r["cap"] is None else fmt(r["cap"])),
            ]
            for i, r in enumerate(rows)
        )
        out.append(
            table(
                ["Subject", "Metric", "Spent", "Held", "Cap"],
                cells,
                empty=f"No spend this {period}.",
                caption=f"This {period}",
            )
        )
    return "".join(out)

"""The Gateway screen shows the gateway's own /v1/status and says what to fix when it cannot."""

from __future__ import annotations

import html
from typing import Any

import httpx
import pytest

from mloop.dashboard import GatewayFeed, gateway_view
from mloop.dashboard._gateway_pages import gateway_page

STATUS: dict[str, Any] = {
    "object": "mloop.gateway.status",
    "at": 1_700_000_000.0,
    "deployments": [
        {
            "name": "big",
            "provider": "openai",
            "model": "gpt-big",
            "rpm": 60,
            "tpm": 6000,
            "quota": {
                "requests_remaining": 41.5,
                "request_capacity": 60.0,
                "tokens_remaining": 5000.0,
                "token_capacity": 6000.0,
                "inflight": 2,
                "max_concurrency": 4,
                "blocked_for_s": 0.0,
            },
            "breaker": "closed",
            "provider_429": 7,
            "calls": {"ok": 30, "rate_limited": 7, "transient": 0, "deployment": 0, "user": 0},
            "fallbacks": 0,
        }
    ],
    "queue": {"interactive": 3, "batch": 11},
    "requests": [{"route": "smart", "ok": 30, "error": 0, "refused": 1}],
    "fallbacks": [{"route": "smart", "deployment": "small", "count": 5}],
    "jobs": {"queued": 2, "running": 1, "succeeded": 9, "failed": 0},
    "spend": {
        "day": [
            {
                "subject": "key:abc",
                "metric": "usd",
                "period": "day",
                "window_start": 0,
                "spent": 1.25,
                "held": 0.5,
                "cap": 10.0,
            }
        ],
        "week": [],
        "month": [],
    },
}


class Sources:
    def __init__(self, gateway: GatewayFeed | None) -> None:
        self.gateway = gateway


def feed(handler: Any) -> GatewayFeed:
    return GatewayFeed("http://gw:4000/", "adm-key", transport=httpx.MockTransport(handler))


def test_the_view_is_the_gateways_status_fetched_with_the_admin_key() -> None:
    seen: list[httpx.Request] = []

    def gateway(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=STATUS)

    data = gateway_view(Sources(feed(gateway)))  # type: ignore[arg-type]
    assert data == {"configured": True, "url": "http://gw:4000/", "error": None, "status": STATUS}
    assert str(seen[0].url) == "http://gw:4000/v1/status"
    assert seen[0].headers["authorization"] == "Bearer adm-key"


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (httpx.Response(403, json={"error": {}}), "set MLOOP_DASHBOARD__GATEWAY_KEY"),
        (httpx.Response(404, json={"error": {}}), "is [dashboard] gateway_url a gateway"),
        (httpx.Response(200, json={"models": []}), "is not an mloop gateway's status"),
        (httpx.Response(200, text="<html>"), "did not answer with JSON"),
    ],
)
def test_an_unreadable_gateway_says_what_to_fix(answer: httpx.Response, says: str) -> None:
    data = gateway_view(Sources(feed(lambda _: answer)))  # type: ignore[arg-type]
    assert data["status"] is None and says in data["error"]
    assert html.escape(says) in gateway_page(data)


def test_an_unreachable_gateway_and_none_configured_are_empty_states() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    data = gateway_view(Sources(feed(down)))  # type: ignore[arg-type]
    assert data["error"].startswith("Could not reach the gateway at http://gw:4000/v1/status")
    none = gateway_view(Sources(None))  # type: ignore[arg-type]
    assert none["configured"] is False and "set [dashboard] gateway_url" in none["error"]
    assert 'id="gateway-empty"' in gateway_page(none)


def test_the_page_shows_each_number_of_the_status_live() -> None:
    data = {"configured": True, "url": "http://gw:4000", "error": None, "status": STATUS}
    page = gateway_page(data)
    for path, text in [
        ("status.queue.interactive", "3"),
        ("status.queue.batch", "11"),
        ("status.jobs.succeeded", "9"),
        ("status.deployments.0.quota.requests_remaining", "41.5"),
        ("status.deployments.0.quota.inflight", "2"),
        ("status.deployments.0.provider_429", "7"),
        ("status.deployments.0.calls.ok", "30"),
        ("status.fallbacks.0.count", "5"),
        ("status.requests.0.refused", "1"),
        ("status.spend.day.0.spent", "1.25"),
    ]:
        assert f'data-field="{path}"' in page, path
        assert f">{text}</span>" in page, (path, text)
    assert "of 60" in page and "/ 4" in page and "key:abc" in page
    assert 'data-api="/ui/api/gateway"' in page  # polled for live refresh

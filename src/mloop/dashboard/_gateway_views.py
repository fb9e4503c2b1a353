"""The Gateway screen's data: a configured gateway's ``GET /v1/status``, fetched server-side.

The gateway computes every number (quota, queue, 429s, fallbacks, jobs, spend); the
dashboard only fetches that plain data with a short timeout and says what to
configure when there is no gateway or it cannot be read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from mloop.dashboard._sources import Sources

__all__ = ["NOT_CONFIGURED", "GatewayFeed", "gateway_view"]

NOT_CONFIGURED = (
    "No gateway configured: set [dashboard] gateway_url to the address mloop gateway serve "
    "listens on (port 4000 by default) in mloop.toml or MLOOP_DASHBOARD__GATEWAY_URL, and an "
    "admin key for it in MLOOP_DASHBOARD__GATEWAY_KEY."
)


class GatewayUnreadable(Exception):
    """The configured gateway's status could not be read; the message says what to fix."""


@dataclass(frozen=True)
class GatewayFeed:
    """Reads one gateway's ``/v1/status`` with an admin key."""

    url: str
    key: str = ""
    timeout_s: float = 2.0
    transport: httpx.BaseTransport | None = None

    def fetch(self) -> dict[str, Any]:
        """The gateway's status, or ``GatewayUnreadable`` saying what to configure."""
        headers = {"authorization": f"Bearer {self.key}"} if self.key else {}
        status_url = self.url.rstrip("/") + "/v1/status"
        try:
            with httpx.Client(timeout=self.timeout_s, transport=self.transport) as client:
                response = client.get(status_url, headers=headers)
        except httpx.HTTPError as exc:
            raise GatewayUnreadable(
                f"Could not reach the gateway at {status_url} ({type(exc).__name__}): check "
                "[dashboard] gateway_url and that mloop gateway serve is running there."
            ) from exc
        if response.status_code in (401, 403):
            raise GatewayUnreadable(
                f"The gateway at {self.url} refused the dashboard's key (HTTP "
                f"{response.status_code}): set MLOOP_DASHBOARD__GATEWAY_KEY to a key with the "
                "admin scope (mloop key create dashboard --scope admin)."
            )
        if response.status_code != 200:
            raise GatewayUnreadable(
                f"The gateway at {status_url} answered HTTP {response.status_code}: is "
                "[dashboard] gateway_url a gateway (mloop gateway serve)?"
            )
        try:
            data = response.json()
        except ValueError as exc:
            raise GatewayUnreadable(f"{status_url} did not answer with JSON.") from exc
        if not isinstance(data, dict) or data.get("object") != "mloop.gateway.status":
            raise GatewayUnreadable(
                f"{status_url} is not an mloop gateway's status: check [dashboard] gateway_url."
            )
        return data


def gateway_view(sources: Sources) -> dict[str, Any]:
    """The page data: the gateway's status, or why there is none (``error``)."""
    feed = sources.gateway
    if feed is None:
        return {"configured": False, "url": None, "error": NOT_CONFIGURED, "status": None}
    try:
        status = feed.fetch()
    except GatewayUnreadable as exc:
        return {"configured": True, "url": feed.url, "error": str(exc), "status": None}
    return {"configured": True, "url": feed.url, "error": None, "status": status}

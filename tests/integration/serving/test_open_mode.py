"""A keyless server on loopback cannot be driven by a web page on another site."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import urlsplit

import httpx
import pytest

from mloop.config import Settings
from mloop.server import ServerHandle, run_in_background

ROW = {"a": 1.0, "b": 2.0, "plan": "pro"}
BODY = b'{"records": [{"a": 1.0, "b": 2.0, "plan": "pro"}]}'


@pytest.fixture
def server(serving_settings: Settings) -> Iterator[ServerHandle]:
    s = replace(
        serving_settings, serving=replace(serving_settings.serving, allowed_hosts="mloop.lan")
    )
    handle = run_in_background(s)  # default auth "auto" on 127.0.0.1: open mode
    try:
        yield handle
    finally:
        handle.stop()


def _post(url: str, headers: dict[str, str], body: bytes = BODY) -> httpx.Response:
    return httpx.post(f"{url}/models/churn/predict", content=body, headers=headers, timeout=10)


def _refused(r: httpx.Response, word: str) -> None:
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert error["type"] == "user_fixable" and word in error["message"]


def test_json_from_a_local_client_is_served(server: ServerHandle) -> None:
    r = _post(server.url, {"content-type": "application/json"})
    assert r.status_code == 200, r.text
    port = urlsplit(server.url).port
    page = {"content-type": "application/json", "origin": f"http://localhost:{port + 1}"}
    assert _post(server.url, page).status_code == 200  # a page on localhost (a local UI)


def test_a_rebound_host_name_is_refused(server: ServerHandle) -> None:
    _refused(httpx.get(f"{server.url}/models", headers={"host": "evil.example"}), "loopback")
    metrics = httpx.get(f"{server.url}/metrics", headers={"host": "evil.example:8000"})
    _refused(metrics, "loopback")
    allowed = httpx.get(f"{server.url}/models", headers={"host": "mloop.lan:8000"})
    assert allowed.status_code == 200


def test_a_cross_site_page_is_refused(server: ServerHandle) -> None:
    headers = {"content-type": "application/json", "origin": "https://evil.example"}
    _refused(_post(server.url, headers), "evil.example")


@pytest.mark.parametrize(
    "kind", ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded"]
)
def test_content_types_a_page_sends_without_preflight_are_refused(
    server: ServerHandle, kind: str
) -> None:
    _refused(_post(server.url, {"content-type": kind}), "application/json")


def test_a_websocket_from_another_site_is_closed(server: ServerHandle) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    ws_url = server.url.replace("http://", "ws://") + "/models/churn/stream"
    with pytest.raises(InvalidStatus):
        connect(ws_url, origin="https://evil.example", open_timeout=10)  # type: ignore[arg-type]
    with connect(ws_url, open_timeout=10) as ws:
        ws.send(BODY.decode())
        assert "predictions" in ws.recv(timeout=10)


def test_with_keys_required_other_hosts_are_the_keys_business(
    serving_settings: Settings,
) -> None:
    with run_in_background(serving_settings, auth=True) as handle:
        r = httpx.get(f"{handle.url}/models", headers={"host": "evil.example"})
    assert r.status_code == 401  # no key: refused for that reason, not the Host

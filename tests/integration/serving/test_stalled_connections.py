"""A client that stalls mid-request, or opens connections by the thousand, cannot starve the server."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import urlsplit

import httpx
import pytest

from mloop.config import Settings
from mloop.server import ServerHandle, run_in_background

ROW = {"a": 1.0, "b": 2.0, "plan": "pro"}


@pytest.fixture
def server(serving_settings: Settings) -> Iterator[ServerHandle]:
    serving = replace(
        serving_settings.serving,
        header_timeout_s=0.5,
        body_timeout_s=0.5,
        max_connections_per_client=20,
    )
    handle = run_in_background(replace(serving_settings, serving=serving), auth=False)
    try:
        yield handle
    finally:
        handle.stop()


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    return sock


def _closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before closing, or None if it kept the connection open."""
    sock.settimeout(0.1)
    received = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    return None


def _predict_ok(url: str) -> bool:
    r = httpx.post(f"{url}/models/churn/predict", json={"records": [ROW]}, timeout=10)
    return r.status_code == 200


def test_headers_that_stall_get_a_408_and_the_connection_closes(server: ServerHandle) -> None:
    sock = _connect(server.url)
    sock.sendall(b"POST /models/churn/predict HTTP/1.1\r\nHost: x\r\n")  # never finishes
    sent = _closed_within(sock, 10)
    assert sent is not None, "a connection stalled in its headers was kept open"
    assert sent.startswith(b"HTTP/1.1 408")
    assert b'"type":"user_fixable"' in sent
    assert _predict_ok(server.url)


def test_headers_trickled_byte_by_byte_still_hit_the_deadline(server: ServerHandle) -> None:
    sock = _connect(server.url)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    closed = False
    deadline = time.monotonic() + 10
    for byte in request:
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        if _closed_within(sock, 0.05) is not None:
            closed = True
            break
        assert time.monotonic() < deadline
    assert closed, "a client that kept sending one header byte at a time was never cut off"


def test_a_body_that_stalls_closes_the_connection(server: ServerHandle) -> None:
    sock = _connect(server.url)
    sock.sendall(
        b"POST /models/churn/predict HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
        b"content-length: 1000\r\n\r\n{"
    )
    assert _closed_within(sock, 10) is not None, "a connection stalled in its body was kept open"
    assert _predict_ok(server.url)


def test_a_connection_that_never_speaks_is_closed_without_a_response(server: ServerHandle) -> None:
    sock = _connect(server.url)
    assert _closed_within(sock, 10) == b""


def test_one_client_cannot_hold_more_than_its_share_of_connections(server: ServerHandle) -> None:
    held = [_connect(server.url) for _ in range(20)]
    extra = _connect(server.url)
    assert _closed_within(extra, 5) is not None, "the 21st connection of one client stayed open"
    for sock in held:
        sock.close()
    # Once the held ones are gone, the client is served again.
    deadline = time.monotonic() + 10
    while not _predict_ok(server.url):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_kept_alive_connections_serve_many_requests(server: ServerHandle) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(5):
            r = client.post("/models/churn/predict", json={"records": [ROW]})
            assert r.status_code == 200
            time.sleep(0.2)  # idle gaps shorter than the header deadline
        assert client.get("/healthz").status_code == 200

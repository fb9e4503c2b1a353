"""Servers the end-to-end tests start as processes: a free port, and waiting until one answers."""

from __future__ import annotations

import socket
import subprocess
import time
from typing import Any

import httpx


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(
    url: str, proc: subprocess.Popen[Any], timeout: float = 60.0, *, status: int | None = None
) -> None:
    """Return once ``url`` answers (with ``status``, if given); fail if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr is not None else ""
            raise RuntimeError(f"{url} exited with {proc.returncode}: {err!r}")
        try:
            answer = httpx.get(url, timeout=0.5)
        except httpx.HTTPError:
            time.sleep(0.1)
            continue
        if status is None or answer.status_code == status:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up in {timeout} s")

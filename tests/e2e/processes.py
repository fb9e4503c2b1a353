"""What the end-to-end tests run as processes: the ``mloop`` CLI, and servers (a free port,
and waiting until one answers)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
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


def run_mloop(home: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    """``mloop ARGS`` in its own process on the home ``home`` (``check``: fail the test,
    with its output, when it exits non-zero)."""
    env = {**os.environ, "MLOOP_HOME": str(home), "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mloop", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"mloop {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc

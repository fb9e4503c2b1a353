"""``mloop demo --exit --port 0``: the whole tour against a real server, within a minute."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx


def test_demo_serves_shows_drift_and_exits(tmp_path: Path) -> None:
    env = {**os.environ, "MLOOP_HOME": str(tmp_path / "home"), "COLUMNS": "100"}
    proc = subprocess.run(
        [sys.executable, "-m", "mloop", "demo", "--exit", "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    docs = re.search(r"API docs: (http://127\.0\.0\.1:(\d+))/docs", out)
    assert docs and int(docs.group(2)) > 0, out
    drift = re.search(r"drift in (.+) \(2 of 6 features\)", out)
    assert drift and {c.strip() for c in drift.group(1).split(",")} == {
        "body_mass_g",
        "flipper_length_mm",
    }, out
    assert re.search(r"realized accuracy 0\.\d+ on \d+ labels", out), out
    assert f"curl -s {docs.group(1)}/models/penguins/predict" in out
    assert "mloop monitor report penguins --out report.html" in out
    # --exit stopped the server: nothing listens on the port any more.
    try:
        httpx.get(f"{docs.group(1)}/healthz", timeout=1)
        still_up = True
    except httpx.HTTPError:
        still_up = False
    assert not still_up

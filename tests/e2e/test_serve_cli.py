"""``mloop serve`` and ``mloop keys`` in a subprocess: keys are required beyond loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from processes import free_port, wait_ready
from sklearn.linear_model import LogisticRegression

from mloop.config import load_settings
from mloop.registry import Registry

CLI = """
import sys, typer
from mloop.cli._main import _root
from mloop.cli._serve import keys_app, serve
app = typer.Typer()
app.callback()(_root)
app.command("serve")(serve)
app.add_typer(keys_app, name="keys")
app()
"""


def _cli(home: Path, *args: str) -> Any:
    """The key commands in-process (only the server needs its own process)."""
    import typer
    from typer.testing import CliRunner

    from mloop.cli._main import _root
    from mloop.cli._serve import keys_app

    app = typer.Typer()
    app.callback()(_root)
    app.add_typer(keys_app, name="keys")
    return CliRunner().invoke(app, ["--home", str(home), *args])


@pytest.mark.slow
def test_serve_requires_a_key_beyond_loopback(tmp_path: Path) -> None:
    home = tmp_path / "home"
    reg = Registry(load_settings(env={}, config_file=None, home=home))
    x = pd.DataFrame(np.random.default_rng(0).normal(size=(100, 3)), columns=["a", "b", "c"])
    y = (x["a"] > 0).astype(int).to_numpy()
    reg.register(
        LogisticRegression().fit(x.to_numpy(), y),
        "m",
        training_data=x,
        target=y,
        alias="production",
    )
    created = _cli(home, "keys", "create", "--scope", "predict", "--name", "e2e")
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[0]
    assert token.startswith("mlp_")
    assert "e2e" in _cli(home, "keys", "list").stdout

    port = free_port()
    env = {**os.environ, "MLOOP_HOME": str(home), "MLOOP_SERVING__ACCESS_LOG": "false"}
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, "serve", "--host", "0.0.0.0", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/v2/health/ready", proc, status=200)
        body = {"records": [{"a": 1.0, "b": 0.0, "c": 0.0}]}
        assert httpx.post(f"{url}/models/m/predict", json=body).status_code == 401
        ok = httpx.post(
            f"{url}/models/m/predict", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert ok.status_code == 200 and ok.json()["predictions"][0]["label"] == 1
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "API keys required" in err
    key_id = token.split("_")[1]
    assert _cli(home, "keys", "revoke", key_id).exit_code == 0
    assert _cli(home, "keys", "list").stdout.startswith("No API keys")

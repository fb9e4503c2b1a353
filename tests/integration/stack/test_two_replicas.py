"""Two replicas of the full server on one database: same routing, one acting controller."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression

from mloop.config import Settings
from mloop.registry import Registry
from mloop.rollout import CanaryPolicy, Rollouts
from mloop.server import build_app

ROW = {"x1": 0.2, "x2": -0.1}


def _wait(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _version(client: TestClient, key: str) -> int:
    r = client.post("/models/churn/predict", json={"records": [ROW]}, headers={"X-Mloop-Key": key})
    assert r.status_code == 200, r.text
    return int(r.json()["version"])


def test_replicas_route_by_the_same_state_and_one_controller_acts(settings: Settings) -> None:
    settings = replace(
        settings, serving=replace(settings.serving, alias_poll_s=0.1, access_log=False)
    )
    registry = Registry(settings)
    rng = np.random.default_rng(0)
    for seed in (0, 1):
        x = pd.DataFrame({"x1": rng.normal(size=200), "x2": rng.normal(size=200)})
        y = np.where(x["x1"] > seed * 0.1, "yes", "no")
        registry.register(
            LogisticRegression().fit(x, y),
            "churn",
            training_data=x,
            alias="production" if seed == 0 else None,
        )
    apps = [
        build_app(settings, registry=Registry(settings), auth=False, controller_tick_s=0.1)
        for _ in range(2)
    ]
    keys = [f"user-{i}" for i in range(60)]
    with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
        assert {_version(c, k) for c in (one, two) for k in keys[:5]} == {1}
        rollouts = Rollouts(registry)
        rollouts.deploy("churn:2", CanaryPolicy(steps=(50.0, 100.0), step_duration_s=3600))
        _wait(lambda: rollouts.status("churn")[0].phase == "running")

        def same_split() -> bool:
            a = [_version(one, k) for k in keys]
            return a == [_version(two, k) for k in keys] and set(a) == {1, 2}

        _wait(same_split)  # each replica warms v2, then routes every key like the other

        controllers: list[Any] = [app.state.stack.controller for app in apps]
        assert sorted(c.is_leader() for c in controllers) == [False, True]
        actors = {e["actor"] for e in rollouts.history("churn") if e["action"] == "start"}
        assert actors == {"rollout-controller"}

        rollouts.command("churn", "rollback", actor="test", reason="by hand")
        _wait(lambda: {_version(c, k) for c in (one, two) for k in keys} == {1})
    registry.store.dispose()

"""Rollouts through the full server: a canary and a blue-green switch under concurrent load.

The real server (``run_in_background`` → ``build_app``) routes by rollout state in
the database and its own controller drives the steps. Users must see no failed
request, and every answer must come from a version the rollout allowed at the time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mloop.config import Settings, load_settings
from mloop.registry import Registry
from mloop.rollout import BlueGreenPolicy, CanaryPolicy, Guard, Policy, Rollouts
from mloop.server import ServerHandle, run_in_background

LAG_S = 1.0  # router poll (0.2 s) plus thread scheduling on a loaded 2-core machine
ROW = {"x1": 0.3, "x2": -0.2}


def _data(seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x1": rng.normal(size=300), "x2": rng.normal(size=300)})
    return frame, np.where(frame["x1"] + frame["x2"] > 0, "yes", "no")


@dataclass
class Answer:
    sent: float
    received: float
    status: int
    version: int | None


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerHandle, Registry]]:
    home = tmp_path_factory.mktemp("loop-rollouts") / "home"
    base = load_settings(env={}, config_file=None, home=home)
    settings: Settings = replace(
        base, serving=replace(base.serving, alias_poll_s=0.2, cache_size=0, access_log=False)
    )
    registry = Registry(settings)
    for seed in (0, 1, 2):
        x, y = _data(seed)
        registry.register(
            LogisticRegression().fit(x, y),
            "churn",
            training_data=x,
            alias="production" if seed == 0 else None,
        )
    handle = run_in_background(settings, registry=registry, auth=False, controller_tick_s=0.1)
    try:
        yield handle, registry
    finally:
        handle.stop()
        registry.store.dispose()


class Load:
    """Client threads posting one-row predictions until stopped."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client) for _ in range(threads)]

    def _client(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            while not self._stop.is_set():
                sent = time.time()
                try:
                    r = http.post("/models/churn/predict", json={"records": [ROW]})
                    status, version = r.status_code, r.json().get("version")
                except httpx.HTTPError:
                    status, version = 0, None
                with self._lock:
                    self.answers.append(Answer(sent, time.time(), status, version))

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)


def _allowed(state_phase: str, weight: float, stable: int, candidate: int) -> set[int]:
    if state_phase == "promoted":
        return {candidate}
    if state_phase in ("rolled_back", "completed", "warming") or weight <= 0:
        return {stable}
    return {candidate} if weight >= 100 else {stable, candidate}


def _run_rollout(
    handle: ServerHandle, registry: Registry, candidate: int, policy: Policy
) -> tuple[list[Answer], list[tuple[float, set[int]]]]:
    rollouts = Rollouts(registry)
    stable = registry.aliases("churn")["production"]
    with Load(handle.url) as load:
        time.sleep(0.5)
        deployed_at = time.time()
        state = rollouts.deploy(f"churn:{candidate}", policy, actor="test")
        deadline = time.monotonic() + 30
        while rollouts.status("churn")[0].active and time.monotonic() < deadline:
            time.sleep(0.1)
        done = rollouts.status("churn")[0]
        time.sleep(LAG_S + 0.5)
    assert done.id == state.id and done.phase == "promoted", done.reason
    timeline = [(0.0, {stable}), (deployed_at, {stable})]
    for event in rollouts.history("churn"):
        if event["rollout_id"] == state.id:
            allowed = _allowed(event["to"], event["weight"], stable, candidate)
            timeline.append((event["at"], allowed))
    return load.answers, timeline


def _check(answers: list[Answer], timeline: list[tuple[float, set[int]]]) -> None:
    failed = [a for a in answers if a.status != 200]
    assert not failed, f"{len(failed)} of {len(answers)} requests failed: {failed[:3]}"
    for a in answers:
        # Everything in force from LAG_S before sending until the answer may have routed it.
        start = max(i for i, (at, _) in enumerate(timeline) if at <= a.sent - LAG_S)
        stop = max(i for i, (at, _) in enumerate(timeline) if at <= a.received)
        allowed = set().union(*(s for _, s in timeline[start : stop + 1]))
        assert a.version in allowed, (a, timeline)


def test_canary_steps_through_under_load_without_failures(
    served: tuple[ServerHandle, Registry],
) -> None:
    handle, registry = served
    policy = CanaryPolicy(
        steps=(25.0, 50.0, 100.0),
        step_duration_s=0.6,
        interval_s=0.1,
        min_requests=5,
        guards=(Guard.parse("error_rate<0.05"),),
    )
    answers, timeline = _run_rollout(handle, registry, 2, policy)
    _check(answers, timeline)
    # deploy, start at 25 %, advance to 50 % and 100 %, promote
    assert len(timeline) >= 2 + 4, timeline
    assert {a.version for a in answers} == {1, 2}
    assert registry.aliases("churn")["production"] == 2


def test_blue_green_switches_all_at_once_without_failures(
    served: tuple[ServerHandle, Registry],
) -> None:
    handle, registry = served
    if registry.aliases("churn")["production"] != 2:
        pytest.skip("runs after the canary promoted version 2")
    policy = BlueGreenPolicy(hold_s=0.6, interval_s=0.1, min_requests=5)
    answers, timeline = _run_rollout(handle, registry, 3, policy)
    _check(answers, timeline)
    switched = next(at for at, allowed in timeline if allowed == {3})
    late = [a for a in answers if a.sent > switched + LAG_S]
    assert late and {a.version for a in late} == {3}
    assert registry.aliases("churn")["production"] == 3

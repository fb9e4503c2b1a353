"""One bad label cannot corrupt a window: checked at the door, quarantined at compaction.

A label that is not one of the classifier's classes, a time beyond the calendar or a
row beyond the column gets a 422 that says why (the whole batch is refused, so a
client can fix and resend it); a poison record already in the spool (an older
version or a bug wrote it) is moved to a dead-letter file, the rest compacts, and
monitoring keeps answering and says how many records it quarantined.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from mloop.monitor._feedback import FeedbackLog
from mloop.monitor._log import PredictionLog
from mloop.monitor._service import Monitor
from mloop.monitor.http import router_for

from .conftest import World, _world, make_data


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[World]:
    w = _world(tmp_path / "home")
    yield w
    w.registry.store.dispose()


@pytest.fixture(params=["parquet", "postgresql"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    """A home whose log compacts into Parquet files or PostgreSQL tables."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    w = _world(tmp_path / "home", url)
    yield w
    w.registry.store.dispose()


@pytest.fixture
def logged(fresh: World) -> tuple[World, list[str]]:
    log = PredictionLog(fresh.settings)
    frame, _ = make_data(40, seed=5)
    ids = fresh.log(log, frame, time.time() - 60)
    log.close()
    Monitor(fresh.settings, fresh.registry).compact()
    return fresh, ids


@pytest.fixture
def client(fresh: World) -> TestClient:
    app = FastAPI()
    app.include_router(router_for(Monitor(fresh.settings, fresh.registry)))
    return TestClient(app)


def _post(client: TestClient, body: Any) -> Any:
    raw = body if isinstance(body, str) else json.dumps(body)
    return client.post("/feedback", content=raw, headers={"content-type": "application/json"})


def _error(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == "user_fixable"
    return error  # type: ignore[no-any-return]


def test_a_label_that_differs_only_in_case_is_refused_with_a_hint(client: TestClient) -> None:
    error = _error(_post(client, {"request_id": "r1", "label": "Yes"}))
    assert "'no', 'yes'" in error["message"]
    assert "Did you mean 'yes'?" in error["message"]


def test_a_label_of_no_model_is_refused_and_lists_the_classes(client: TestClient) -> None:
    error = _error(_post(client, {"request_id": "r1", "label": "maybe", "model": "churn"}))
    assert "model 'churn'" in error["message"] and "'no', 'yes'" in error["message"]
    assert "Did you mean" not in error["message"]


@pytest.mark.parametrize(
    ("raw", "word"),
    [
        ('{"request_id": "r1", "label": "yes", "ts": 1e308}', "2000-01-01"),
        ('{"request_id": "r1", "label": "yes", "ts": -1e308}', "2000-01-01"),
        ('{"request_id": "r1", "label": "yes", "ts": "inf"}', "epoch seconds"),
        ('{"request_id": "r1", "label": "yes", "ts": "soon"}', "ISO 8601"),
        ('{"request_id": "r1", "label": "yes", "row": 2147483648}', "row index"),
        ('{"request_id": "r1", "label": "yes", "row": -1}', "row index"),
        ('{"request_id": "r1", "label": "yes", "row": true}', "row index"),
        ('{"request_id": "r1", "label": "yes", "row": 1.5}', "row index"),
        ('{"request_id": "r1", "label": {"a": [1]}}', "one class name"),
        ('{"request_id": "r1", "label": ["yes"]}', "one class name"),
        ('{"request_id": {"x": 1}, "label": "yes"}', "request_id"),
        ('{"request_id": "' + "r" * 300 + '", "label": "yes"}', "at most 256"),
    ],
)
def test_out_of_bounds_fields_are_refused(client: TestClient, raw: str, word: str) -> None:
    assert word in _error(_post(client, raw))["message"]


def test_a_huge_batch_is_refused(client: TestClient) -> None:
    batch = [{"request_id": f"r{i}", "label": "yes"} for i in range(10_001)]
    assert "at most 10000" in _error(_post(client, batch))["message"]


def test_one_bad_label_refuses_the_whole_batch(logged: tuple[World, list[str]]) -> None:
    world, ids = logged
    monitor = Monitor(world.settings, world.registry)
    app = FastAPI()
    app.include_router(router_for(monitor))
    client = TestClient(app)
    good = [{"request_id": r, "label": "yes"} for r in ids[:10]]
    _error(_post(client, [*good, {"request_id": ids[10], "label": "Yes"}]))
    monitor.compact()
    status = monitor.status("churn", since="1h", window="1h")
    assert sum(w.labelled for w in status.windows) == 0
    accepted = _post(client, good)
    assert accepted.status_code == 202 and accepted.json()["accepted"] == 10
    monitor.compact()
    status = monitor.status("churn", since="1h", window="1h")
    assert sum(w.labelled for w in status.windows) == 10
    accuracies = [w.metric("accuracy") for w in status.windows if w.labelled]
    assert accuracies and all(a is not None for a in accuracies)
    monitor.close()


def test_a_poison_record_in_the_spool_is_quarantined_and_monitoring_answers(
    any_store: World,
) -> None:
    world = any_store
    log = PredictionLog(world.settings)
    ids = world.log(log, make_data(40, seed=5)[0], time.time() - 60)
    log.close()
    # Bypass the door, as an older version or a bug would have.
    spool = FeedbackLog(world.settings)
    for ts in (1e308, -1e308):
        spool._append({"request_id": ids[0], "row": 0, "label": "yes", "ts": ts}, None)
    spool._append({"request_id": ids[1], "row": 2**40, "label": "yes", "ts": time.time()}, None)
    for r in ids[2:7]:
        spool._append({"request_id": r, "row": 0, "label": "no", "ts": time.time()}, None)
    spool.close()

    monitor = Monitor(world.settings, world.registry)
    monitor.compact()
    monitor.compact()  # a second pass has nothing left to retry
    status = monitor.status("churn", since="1h", window="1h")
    assert status.quarantined == {"feedback": 3}
    (path,) = status.dead_letters
    letters = [json.loads(line) for line in Path(path).read_text().splitlines()]
    assert len(letters) == 3
    assert {letter["record"]["request_id"] for letter in letters} == {ids[0], ids[1]}
    assert all(letter["reason"] for letter in letters)
    assert sum(w.labelled for w in status.windows) == 5
    assert status.to_dict()["quarantined"] == {"feedback": 3}

    app = FastAPI()
    app.include_router(router_for(monitor))
    answer = TestClient(app).get("/models/churn/monitor/status", params={"since": "1h"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["quarantined"] == {"feedback": 3}
    monitor.close()

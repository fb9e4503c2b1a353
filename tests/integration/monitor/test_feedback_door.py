"""One bad label cannot corrupt a window: checked at the door, quarantined at compaction.

A label that is not one of the classifier's classes, a time beyond the calendar or a
row beyond the column gets a 422 that says why (the whole batch is refused, every bad
item listed by index, so a client can fix and resend it); a poison record already in
the spool (an older version or a bug wrote it) is moved to a dead-letter file, the
rest compacts, and monitoring keeps answering and says how many records it
quarantined.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from mloop._clock import ManualClock
from mloop.errors import InvalidInput
from mloop.journal._feedback import FeedbackLog
from mloop.journal._log import PredictionLog
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


@pytest.mark.parametrize("label", ["Yes", "YES", " yes"])
def test_a_label_that_differs_only_in_case_is_refused_with_a_hint(
    client: TestClient, label: str
) -> None:
    error = _error(_post(client, {"request_id": "r1", "label": label}))
    assert "'no', 'yes'" in error["message"]
    assert "Did you mean 'yes'?" in error["message"]
    assert error["violations"] == [
        {"index": 0, "field": "label", "value": label, "message": error["message"]}
    ]


def test_a_label_of_another_kind_is_refused_and_lists_the_classes(client: TestClient) -> None:
    error = _error(_post(client, {"request_id": "r1", "label": 3, "model": "churn"}))
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
        ('{"request_id": "' + "r" * 201 + '", "label": "yes"}', "at most 200"),
        ('{"request_id": "r\\u0000", "label": "yes"}', "NUL"),
        ('{"request_id": "r1", "label": "yes", "ts": NaN}', "not valid JSON"),
        (
            '{"request_id": "r1", "label": "yes", "model": "churm"}',
            "model 'churm', which is not registered",
        ),
        ("[" * 2000 + "]" * 2000, "nested deeper than JSON parsing allows"),
        ('{"request_id": "r1", "label": ' + "[" * 40 + "]" * 40 + "}", "one class name"),
    ],
)
def test_out_of_bounds_fields_are_refused(client: TestClient, raw: str, word: str) -> None:
    assert word in _error(_post(client, raw))["message"]


@pytest.mark.parametrize(
    ("ts", "word"),
    [
        (float("nan"), "finite epoch seconds"),
        (float("inf"), "finite epoch seconds"),
        (-float("inf"), "finite epoch seconds"),
        (10**400, "not between 2000-01-01 and tomorrow"),
        ("2199-01-01T00:00:00Z", "not between 2000-01-01 and tomorrow"),
    ],
)
def test_a_time_that_is_no_finite_recent_epoch_is_refused_by_the_python_api(
    fresh: World, ts: Any, word: str
) -> None:
    monitor = Monitor(fresh.settings, fresh.registry)
    with pytest.raises(InvalidInput, match=word):
        monitor.feedback({"request_id": "r1", "label": "yes", "ts": ts})
    monitor.close()


def test_an_iso_time_is_accepted(fresh: World) -> None:
    monitor = Monitor(fresh.settings, fresh.registry)
    result = monitor.feedback({"request_id": "r1", "label": "yes", "ts": "2024-05-01T12:00:00Z"})
    assert result.accepted == 1
    monitor.close()


def test_every_bad_item_is_listed_with_its_index(client: TestClient) -> None:
    batch: list[dict[str, Any]] = [{"request_id": f"r{i}", "label": "yes"} for i in range(10)]
    batch[1]["label"] = "Yes"
    batch[4]["ts"] = 1e308
    batch[7]["row"] = 2**31
    error = _error(_post(client, batch))
    assert error["message"].startswith("3 of 10 feedback items are invalid")
    assert "send the batch again" in error["message"]
    assert [(v["index"], v["field"]) for v in error["violations"]] == [
        (1, "label"),
        (4, "ts"),
        (7, "row"),
    ]
    assert "Did you mean 'yes'?" in error["violations"][0]["message"]
    assert error["violations"][2]["value"] == 2**31


def test_a_huge_batch_is_refused(client: TestClient) -> None:
    batch = [{"request_id": f"r{i}", "label": "yes"} for i in range(10_001)]
    assert "at most 10000" in _error(_post(client, batch))["message"]


def test_a_body_beyond_the_servers_limit_is_a_413(fresh: World) -> None:
    from mloop.server import build_app

    app = build_app(fresh.settings, registry=fresh.registry)
    body = json.dumps([{"request_id": "r" * 190, "label": "yes"}] * 50_000)
    with TestClient(app) as served:
        answer = _post(served, body)
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"]["code"] == "payload_too_large"


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
    # Predictions the columns cannot hold: a version beyond 32 bits, an overlong entity key.
    poison = {"model": "churn", "inputs": [{"age": 1.0}], "outputs": [{"label": "yes"}]}
    log.submit({**poison, "request_id": "p1", "ts": time.time() - 60, "version": 2**40})
    log.submit(
        {**poison, "request_id": "p2", "ts": time.time() - 60, "version": 1}
        | {"entity_keys": ["k" * 300]}
    )
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
    assert status.quarantined == {"predictions": 2, "feedback": 3}
    paths = {Path(p).parent.name: Path(p) for p in status.dead_letters}
    letters = [json.loads(line) for line in paths["feedback"].read_text().splitlines()]
    assert len(letters) == 3
    assert {letter["record"]["request_id"] for letter in letters} == {ids[0], ids[1]}
    assert all(letter["reason"] for letter in letters)
    kept = [json.loads(line) for line in paths["predictions"].read_text().splitlines()]
    assert {k["record"]["request_id"] for k in kept} == {"p1", "p2"}
    assert sum(w.rows for w in status.windows) == 40
    assert sum(w.labelled for w in status.windows) == 5
    assert status.to_dict()["quarantined"] == {"predictions": 2, "feedback": 3}

    app = FastAPI()
    app.include_router(router_for(monitor))
    answer = TestClient(app).get("/models/churn/monitor/status", params={"since": "1h"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["quarantined"] == {"predictions": 2, "feedback": 3}
    assert answer.json()["dead_letters"] == status.dead_letters
    report = TestClient(app).get("/models/churn/monitor/report", params={"since": "1h"})
    assert report.status_code == 200, report.text
    monitor.close()


def test_postgres_refuses_a_value_its_columns_cannot_hold_and_stores_nothing_of_the_batch(
    pg_world: World,
) -> None:
    from mloop.journal._logstore import RecordsRejected
    from mloop.journal._spool import SpoolPosition
    from mloop.monitor import live

    store = live.SqlLogStore(pg_world.registry.store.engine)
    writer = pg_world.settings.home / "spool" / "feedback" / "w0"
    good = {"request_id": "r1", "row": 0, "label": "yes", "ts": time.time(), "model": None}
    for bad in ({"request_id": "r" * 201}, {"entity_key": "a\x00b"}, {"row": 2**31}):
        with pytest.raises(RecordsRejected):
            store.commit("feedback", writer, [good, good | bad], SpoolPosition(1, 0), 100)
    assert store.feedback(0).empty
    assert store.load_checkpoint("feedback", writer).position == SpoolPosition(0, 0)


def test_monitoring_answers_while_the_log_store_takes_no_writes(
    logged: tuple[World, list[str]],
) -> None:
    from mloop.journal._logstore import ParquetLogStore

    world, ids = logged

    class Down(ParquetLogStore):
        def commit(self, *args: Any, **kwargs: Any) -> None:
            raise ConnectionError("the disk is read-only")

    monitor = Monitor(world.settings, world.registry, store=Down(world.settings.home))
    monitor.feedback([{"request_id": r, "label": "yes"} for r in ids[:5]])
    app = FastAPI()
    app.include_router(router_for(monitor))
    answer = TestClient(app).get("/models/churn/monitor/status", params={"since": "1h"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["compaction_error"] == "ConnectionError: the disk is read-only"
    assert sum(w["rows"] for w in body["windows"]) == 40  # what was compacted before
    assert body["quarantined"] == {}
    monitor.close()

    healthy = Monitor(world.settings, world.registry)  # the labels waited in the spool
    status = healthy.status("churn", since="1h", window="2h")
    assert status.compaction_error is None
    assert sum(w.labelled for w in status.windows) == 5
    healthy.close()


def _register_others(world: World) -> None:
    """A second classifier ("colour": red/green) and a regressor ("price")."""
    from sklearn.linear_model import LinearRegression, LogisticRegression

    x, _ = make_data(200, seed=1)
    numeric = x[["age", "income"]]
    colour = np.where(numeric["income"] > 50, "red", "green")
    world.registry.register(
        LogisticRegression().fit(numeric, colour), "colour", training_data=numeric, target=colour
    )
    price = numeric["income"].to_numpy() * 2.0
    world.registry.register(
        LinearRegression().fit(numeric, price), "price", training_data=numeric, target=price
    )


def _accuracy(monitor: Monitor) -> tuple[int, float | None]:
    monitor.compact()
    (window,) = monitor.status("churn", since="1h", window="2h").windows[-1:]
    return window.labelled, window.metric("accuracy")


def test_realized_accuracy_of_a_window_is_unaffected_by_a_refused_bad_label_batch(
    logged: tuple[World, list[str]],
) -> None:
    world, ids = logged
    monitor = Monitor(world.settings, world.registry)
    app = FastAPI()
    app.include_router(router_for(monitor))
    client = TestClient(app)
    good = [{"request_id": r, "label": "yes" if i % 3 else "no"} for i, r in enumerate(ids[:20])]
    assert _post(client, good).status_code == 202
    before = _accuracy(monitor)
    assert before[0] == 20 and before[1] is not None

    # Flipped labels for every other request, and one in the wrong case: all refused.
    flipped = [{"request_id": r, "label": "no"} for r in ids[:30]]
    flipped[25]["label"] = "No"
    _error(_post(client, flipped))
    assert _accuracy(monitor) == before
    monitor.close()


def test_a_label_for_a_request_this_server_answered_is_checked_against_its_model(
    fresh: World,
) -> None:
    _register_others(fresh)
    log = PredictionLog(fresh.settings)
    monitor = Monitor(fresh.settings, fresh.registry, prediction_log=log)
    ids = fresh.log(log, make_data(10, seed=5)[0], time.time() - 60)

    # 12.5 scores the regressor "price", but not churn (text classes), which answered ids[0].
    with pytest.raises(InvalidInput, match="not a class of model 'churn' and not a new class"):
        monitor.feedback({"request_id": ids[0], "label": 12.5})
    with pytest.raises(InvalidInput, match="answered by model 'churn'"):
        monitor.feedback({"request_id": ids[0], "label": "red", "model": "colour"})
    assert monitor.feedback({"request_id": ids[0], "label": "yes"}).accepted == 1
    monitor.close()
    log.close()


def test_a_label_the_door_cannot_place_is_left_out_at_the_join(fresh: World) -> None:
    _register_others(fresh)
    log = PredictionLog(fresh.settings)
    ids = fresh.log(log, make_data(10, seed=5)[0], time.time() - 60)
    log.close()
    # Another worker: it did not answer these requests, so 12.5 fits some model (price).
    monitor = Monitor(fresh.settings, fresh.registry)
    monitor.feedback([{"request_id": r, "label": "yes"} for r in ids[:6]])
    before = _accuracy(monitor)
    assert monitor.feedback([{"request_id": r, "label": 12.5} for r in ids[6:]]).accepted == 4
    monitor.compact()
    (window,) = monitor.status("churn", since="1h", window="2h").windows[-1:]
    assert (window.labelled, window.metric("accuracy")) == before
    assert window.unscorable_labels == 4
    assert window.to_dict()["unscorable_labels"] == 4
    monitor.close()


def test_a_class_the_model_never_saw_is_stored_and_counts_as_a_miss(fresh: World) -> None:
    log = PredictionLog(fresh.settings)
    ids = fresh.log(log, make_data(10, seed=5)[0], time.time() - 60)
    log.close()
    monitor = Monitor(fresh.settings, fresh.registry)
    monitor.feedback([{"request_id": r, "label": "yes"} for r in ids[:6]])
    assert (
        monitor.feedback([{"request_id": r, "label": "churned-twice"} for r in ids[6:]]).accepted
        == 4
    )
    monitor.compact()
    (window,) = monitor.status("churn", since="1h", window="2h").windows[-1:]
    assert window.labelled == 10 and window.new_class_labels == 4
    assert window.to_dict()["new_class_labels"] == 4
    assert window.metric("accuracy") <= 0.6  # no prediction can name the new class
    assert window.metric("log_loss") > 10  # the model gave it no probability at all
    monitor.close()


@pytest.mark.parametrize("label", ["cheap", "NaN", True, float("inf")])
def test_a_regressors_label_must_be_a_finite_number(fresh: World, label: Any) -> None:
    _register_others(fresh)
    monitor = Monitor(fresh.settings, fresh.registry)
    with pytest.raises(InvalidInput, match="finite number"):
        monitor.feedback({"entity_key": "k1", "model": "price", "label": label})
    assert monitor.feedback({"entity_key": "k1", "model": "price", "label": 12.5}).accepted == 1
    monitor.close()


def test_a_model_registered_a_moment_ago_is_known_to_feedback(fresh: World) -> None:
    clock = ManualClock()
    monitor = Monitor(fresh.settings, fresh.registry, clock=clock)
    with pytest.raises(InvalidInput, match="model 'colour', which is not registered"):
        monitor.feedback({"entity_key": "k1", "model": "colour", "label": "red"})
    _register_others(fresh)
    clock.advance(1.0)  # within the label spaces' lifetime, but a name it never saw
    assert monitor.feedback({"entity_key": "k1", "model": "colour", "label": "red"}).accepted == 1
    monitor.close()


def test_a_label_file_with_one_bad_row_imports_nothing_and_names_the_row(
    logged: tuple[World, list[str]], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from .test_http_cli import _cli

    world, ids = logged
    rows = [f"{r},0,yes" for r in ids[:25]]
    rows[17] = f"{ids[17]},0,Yes"
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,row,label\n" + "\n".join(rows) + "\n")
    runner = CliRunner()
    app = _cli(world)

    refused = runner.invoke(app, ["feedback", "import", str(labels), "--batch", "10"])
    assert isinstance(refused.exception, InvalidInput), refused.output  # exit 2 in mloop
    message = refused.exception.message
    assert message.startswith(f"1 of 25 labels in {labels} are invalid, so none was imported")
    assert "Feedback item 17 has label 'Yes'" in message and "Did you mean 'yes'?" in message
    assert [v["index"] for v in refused.exception.details["violations"]] == [17]
    monitor = Monitor(world.settings, world.registry)
    assert _accuracy(monitor)[0] == 0  # the first batch, fine on its own, was not stored either

    labels.write_text("request_id,row,label\n" + "\n".join(r.replace("Yes", "yes") for r in rows))
    imported = runner.invoke(app, ["feedback", "import", str(labels), "--batch", "10"])
    assert imported.exit_code == 0, imported.output
    assert _accuracy(monitor)[0] == 25
    monitor.close()


def test_monitor_status_on_the_command_line_names_the_dead_letter_file(
    fresh: World,
) -> None:
    from typer.testing import CliRunner

    from .test_http_cli import _cli

    log = PredictionLog(fresh.settings)
    fresh.log(log, make_data(5, seed=5)[0], time.time() - 60)
    log.close()
    spool = FeedbackLog(fresh.settings)
    spool._append({"request_id": "r1", "row": 2**40, "label": "yes", "ts": time.time()}, None)
    spool.close()

    runner = CliRunner()
    shown = runner.invoke(_cli(fresh), ["monitor", "status", "churn", "--since", "1h"])
    assert shown.exit_code == 0, shown.output
    flat = " ".join(shown.output.split())
    assert "1 feedback record(s) could not be stored and were quarantined" in flat
    assert "dead-letter.jsonl" in flat
    as_json = runner.invoke(
        _cli(fresh), ["monitor", "status", "churn", "--since", "1h", "--format", "json"]
    )
    assert json.loads(as_json.output)["quarantined"] == {"feedback": 1}

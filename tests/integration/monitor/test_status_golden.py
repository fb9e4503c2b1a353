"""Monitor.status on awkward logged traffic equals the numbers it gave before the log
was read column-wise: a golden file written by the row-by-row reader (JSON decoded per
logged row), which a faster reader must reproduce exactly.

The traffic has what real clients send: missing values, a number sent as text, text
in a numeric column, an unknown category, an extra key, a feature left out of some
requests, two versions, labels by request id and by entity key, and a class the
model never saw. Regenerate only on purpose: ``MLOOP_WRITE_GOLDEN=1 pytest <this file>``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from mloop._clock import ManualClock
from mloop.journal._live_tables import monitor_prediction_columns
from mloop.journal._log import PredictionLog
from mloop.monitor._service import Monitor

from .conftest import START, World, make_data

GOLDEN = Path(__file__).with_name("golden_status.json")


def _awkward(records: list[dict[str, Any]], i: int) -> dict[str, Any]:
    """Row ``i`` of the second hour, made awkward in one of several ways."""
    row = dict(records[i])
    kind = i % 9
    if kind == 1:
        row["income"] = None
    elif kind == 2:
        row["age"] = str(round(row["age"], 3))  # a number sent as text
    elif kind == 3:
        row["plan"] = "z"  # a category the model never saw
    elif kind == 4:
        row.pop("income")  # a feature left out
    elif kind == 5:
        row["note"] = "extra key"
    elif kind == 6:
        row["age"] = "unknown"  # text in a numeric column
    return row


def _log_traffic(world: World) -> dict[str, list[str]]:
    log = PredictionLog(world.settings)
    calm, _ = make_data(120, seed=11)
    shifted, _ = make_data(120, seed=12, shift=15.0)
    ids: dict[str, list[str]] = {"calm": [], "shifted": [], "v2": []}
    n = 0

    def send(
        inputs: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
        ts: float,
        version: int,
        group: str,
    ) -> None:
        nonlocal n
        n += 1
        rid = f"req-{n:05d}"
        log.submit(
            {
                "request_id": rid,
                "ts": ts,
                "model": "churn",
                "version": version,
                "inputs": inputs,
                "outputs": outputs,
                "latency_ms": 1.0 + n % 7,
                "entity_keys": [f"ent-{rid}-{r}" for r in range(len(inputs))],
            }
        )
        ids[group].append(rid)

    for group, frame, hour in (("calm", calm, 0), ("shifted", shifted, 1)):
        records = frame.to_dict("records")
        outputs = world.predictor.predict(records).to_records()
        for start in range(0, len(records), 4):
            inputs = records[start : start + 4]
            if hour == 1:
                inputs = [_awkward(records, i) for i in range(start, start + 4)]
            send(inputs, outputs[start : start + 4], START + hour * 3600 + start, 1, group)
    # A second version's traffic in the second hour (its outputs: the same model's).
    records = calm.to_dict("records")[:40]
    outputs = world.predictor.predict(records).to_records()
    for start in range(0, 40, 5):
        send(
            records[start : start + 5],
            outputs[start : start + 5],
            START + 3600 + 900 + start,
            2,
            "v2",
        )
    log.close()
    return ids


def _labels(ids: dict[str, list[str]]) -> list[dict[str, Any]]:
    _, y_calm = make_data(120, seed=11)
    _, y_shifted = make_data(120, seed=12, shift=15.0)
    out: list[dict[str, Any]] = []
    for i, rid in enumerate(ids["calm"][:20]):  # by request id
        for r in range(4):
            out.append({"request_id": rid, "row": r, "label": str(y_calm[i * 4 + r])})
    for i, rid in enumerate(ids["shifted"][:15]):  # by entity key, one a new class
        for r in range(4):
            label = "maybe" if (i, r) == (3, 1) else str(y_shifted[i * 4 + r])
            out.append({"entity_key": f"ent-{rid}-{r}", "label": label})
    out.append({"request_id": ids["v2"][0], "row": 0, "label": "no"})
    return out


def _plain(value: Any) -> Any:
    """JSON-ready, with floats rounded so that summation order cannot flip a digit."""
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 9)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _register_second_version(world: World) -> None:
    x, y = make_data(1000, seed=5, shift=5.0)
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["plan"]), remainder="passthrough"),
        LogisticRegression(),
    ).fit(x, y)
    world.registry.register(model, "churn", training_data=x, target=y)


def _logged(world: World) -> Monitor:
    _register_second_version(world)
    ids = _log_traffic(world)
    mon = Monitor(world.settings, world.registry, clock=ManualClock(START + 2 * 3600))
    mon.compact()
    mon.feedback(_labels(ids))
    mon.compact()
    return mon


def _numbers(mon: Monitor) -> dict[str, Any]:
    status = mon.status("churn", since=START, until=START + 7200, window="1h")
    one = mon.status("churn", since=START, until=START + 7200, window="1h", version=1)
    versions = mon.observe_versions("churn", [1, 2], since=START, until=START + 7200)
    return _plain(
        {
            "status": status.to_dict(detail=True),
            "version_1": one.to_dict(detail=True),
            "observe_versions": {str(v): w.to_dict(detail=True) for v, w in versions.items()},
        }
    )


def test_status_on_awkward_traffic_matches_the_golden_numbers(world: World) -> None:
    numbers = _numbers(_logged(world))  # Parquet log store
    if os.environ.get("MLOOP_WRITE_GOLDEN"):
        GOLDEN.write_text(json.dumps(numbers, indent=1, sort_keys=True) + "\n")
    assert numbers == json.loads(GOLDEN.read_text())


def test_the_postgresql_log_store_gives_the_same_numbers(pg_world: World) -> None:
    mon = _logged(pg_world)
    golden = json.loads(GOLDEN.read_text())
    assert _numbers(mon) == golden  # from the monitoring tables kept with each batch
    with mon.store.engine.begin() as conn:  # type: ignore[attr-defined]
        kept = conn.execute(sa.select(sa.func.count()).select_from(monitor_prediction_columns))
        assert kept.scalar_one() > 0
        # as a log compacted before monitoring tables were kept: decoded from its rows
        conn.execute(sa.delete(monitor_prediction_columns))
    assert _numbers(mon) == golden

"""With PostgreSQL metadata the log compacts into tables; status, feedback and alerts work the same."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mloop._clock import ManualClock
from mloop.journal._live_tables import monitor_predictions
from mloop.journal._log import PredictionLog
from mloop.journal._sqlstore import SqlLogStore
from mloop.monitor._alerting import Alerter
from mloop.monitor._alerts import AlertRule
from mloop.monitor._service import Monitor
from mloop.monitor._sinks import LogSink

from .conftest import START, World, make_data

pytestmark = pytest.mark.postgres


def test_postgres_log_status_feedback_and_alert_state(pg_world: World) -> None:
    log = PredictionLog(pg_world.settings)
    frame, y = make_data(300, seed=4, shift=15.0)
    ids = pg_world.log(log, frame, START + 30)
    log.close()
    clock = ManualClock(START + 3600)
    monitor = Monitor(pg_world.settings, pg_world.registry, clock=clock)
    assert isinstance(monitor.store, SqlLogStore)
    assert monitor.compact() == 300
    assert monitor.compact() == 0
    result = monitor.feedback([{"request_id": r, "label": str(y[i])} for i, r in enumerate(ids)])
    assert result.matched == 300
    window = monitor.status("churn", since=START, until=START + 3600, window="1h").windows[0]
    assert window.rows == 300 and window.labelled == 300
    assert window.drift is not None and "age" in window.drift.drifted_columns
    with pg_world.registry.store.read() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(monitor_predictions)).scalar()
    assert stored == 300

    rule = AlertRule(name="drift", model="churn", metric="drift_share", threshold=0.1)
    alerter = Alerter(monitor, [rule], sinks=[LogSink()])
    assert [e.kind for e in alerter.evaluate()] == ["firing"]
    assert alerter.state("drift").status == "firing"
    assert monitor.prune("1s") == 300  # everything was logged long before the clock's now
    monitor.close()


def test_monitoring_rows_stay_exact_when_prune_cuts_through_a_batch(pg_world: World) -> None:
    """A batch's monitoring table outlives rows pruned out of it: reads over those rows
    are answered from the rows themselves, never with the pruned ones."""
    log = PredictionLog(pg_world.settings)
    frame, _ = make_data(10, seed=3)
    for i in range(10):  # one compacted batch spanning ten seconds
        pg_world.log(log, frame.iloc[[i]], START + i)
    log.close()
    monitor = Monitor(pg_world.settings, pg_world.registry, clock=ManualClock(START + 60))
    monitor.compact()
    store = monitor.store
    whole = store.monitoring_rows("churn", START, START + 60)
    assert whole is not None and whole.num_rows == 10
    store.prune(START + 5)
    kept = store.monitoring_rows("churn", START, START + 60)
    assert kept is not None
    assert kept.column("ts").to_pylist() == [START + i for i in range(5, 10)]
    assert kept.column("i:age").to_pylist() == whole.column("i:age").to_pylist()[5:]

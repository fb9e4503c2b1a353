"""PredictionLog: non-blocking submit, durability waits, sampling, compaction exactly once."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import replace
from pathlib import Path

import pytest

from mloop.config import Settings
from mloop.errors import InvalidInput
from mloop.journal._compact import compact_stream
from mloop.journal._log import PredictionLog, sampled
from mloop.journal._logstore import ParquetLogStore
from mloop.journal._spool import list_segments, read_frames, segment_path

from ._records import record


def test_flush_makes_every_submitted_record_durable(settings: Settings) -> None:
    log = PredictionLog(settings)
    for i in range(500):
        assert log.submit(record(i))
    log.flush()
    writer = log.spool.directory
    frames = [p for s in list_segments(writer) for _e, p in read_frames(segment_path(writer, s))]
    log.close()
    assert len(frames) == 500


def test_wait_durable_by_request_id_and_async_durable(settings: Settings) -> None:
    with PredictionLog(settings) as log:
        log.submit(record(1))
        log.wait_durable("req-1")
        log.wait_durable("never-submitted")  # nothing pending: returns at once

        async def go() -> None:
            log.submit(record(2))
            log.submit(record(3))
            await log.durable(["req-2", "req-3"])
            await log.durable()

        asyncio.run(go())


def test_sampling_is_deterministic_per_request_id(settings: Settings) -> None:
    half = dataclasses.replace(
        settings, monitor=dataclasses.replace(settings.monitor, sample_rate=0.5)
    )
    with PredictionLog(half) as log:
        kept = [log.submit(record(i)) for i in range(2000)]
    assert 800 < sum(kept) < 1200
    assert all(sampled(f"req-{i}", 0.5) == k for i, k in enumerate(kept))


def test_record_without_required_keys_is_rejected(settings: Settings) -> None:
    with PredictionLog(settings) as log, pytest.raises(InvalidInput, match="request_id"):
        log.submit({"model": "churn"})


def test_compaction_stores_each_row_once_and_drops_old_segments(settings: Settings) -> None:
    log = PredictionLog(settings)
    log.spool.segment_bytes = 4096  # force several segments
    for i in range(300):
        log.submit(record(i, rows=2))
        if i % 50 == 0:
            log.flush()
    log.flush()
    store = ParquetLogStore(settings.home)
    root = settings.home / "spool"
    assert compact_stream(store, root, "predictions") == 300
    assert compact_stream(store, root, "predictions") == 0  # nothing new: nothing repeated
    for i in range(300, 310):
        log.submit(record(i))
    log.close()
    assert compact_stream(store, root, "predictions") == 10
    frame = store.predictions("churn", 0, 2e9)
    assert len(frame) == 610
    assert not frame.duplicated(["request_id", "row"]).any()
    assert len(list_segments(log.spool.directory)) == 1
    files = list((settings.home / "predictions" / "model=churn").glob("date=*/part-*.parquet"))
    assert files


def test_crash_between_parquet_write_and_checkpoint_does_not_duplicate(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with PredictionLog(settings) as log:
        for i in range(20):
            log.submit(record(i))
    store = ParquetLogStore(settings.home)
    real_save = store._save
    seen_intent = {"yes": False}

    def crash_on_final_checkpoint(writer: Path, position: object, pending: object) -> None:
        if pending is None and seen_intent["yes"]:
            raise RuntimeError("simulated crash after the files were written")
        seen_intent["yes"] = pending is not None
        real_save(writer, position, pending)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "_save", crash_on_final_checkpoint)
    with pytest.raises(RuntimeError, match="simulated"):
        compact_stream(store, settings.home / "spool", "predictions")
    monkeypatch.setattr(store, "_save", real_save)
    with PredictionLog(settings) as log:  # more records arrive before the retry
        for i in range(20, 25):
            log.submit(record(i))
    compact_stream(store, settings.home / "spool", "predictions")
    frame = store.predictions("churn", 0, 2e9)
    assert sorted(frame["request_id"]) == sorted(f"req-{i}" for i in range(25))


def test_background_compactor_compacts_on_stop(settings: Settings) -> None:
    from mloop.journal._compact import BackgroundCompactor

    with PredictionLog(settings) as log:
        for i in range(5):
            log.submit(record(i))
    store = ParquetLogStore(settings.home)
    compactor = BackgroundCompactor(store, settings.home / "spool", interval_s=3600).start()
    compactor.stop()
    assert len(store.predictions("churn", 0, 4e9)) == 5


def test_live_module_exports_a_sorted_public_surface() -> None:
    from mloop.monitor import live

    assert live.__all__ == sorted(live.__all__)
    assert {"Alerter", "Monitor", "PredictionLog", "WindowStatus"} <= set(live.__all__)


def _buffered(settings: Settings) -> Settings:
    return replace(settings, monitor=replace(settings.monitor, write_through=False))


def test_a_full_queue_refuses_with_overloaded_and_recovers(settings: Settings) -> None:
    import threading

    from mloop.errors import Overloaded

    log = PredictionLog(_buffered(settings), max_pending=3)
    gate = threading.Event()
    real_append = log.spool.append

    def stuck(payloads: list[bytes]) -> object:
        gate.wait(10)  # the disk stalls
        return real_append(payloads)

    log.spool.append = stuck  # type: ignore[method-assign]
    log.submit(record(0))  # the writer may take it and block in append, or still hold it
    accepted = 0
    with pytest.raises(Overloaded) as caught:
        for i in range(1, 10):
            log.submit(record(i))
            accepted += 1
    assert caught.value.retry_after is not None and caught.value.status_code == 429
    gate.set()
    log.flush()
    log.submit(record(99))
    log.close()
    assert 2 <= accepted <= 3


def test_prune_drops_whole_old_days(settings: Settings) -> None:
    with PredictionLog(settings) as log:
        log.submit(record(1, ts=1_700_000_000.0))
        log.submit(record(2, ts=1_700_000_000.0 + 3 * 86400))
    store = ParquetLogStore(settings.home)
    compact_stream(store, settings.home / "spool", "predictions")
    assert store.prune(1_700_000_000.0 + 2 * 86400) == 1
    assert list(store.predictions("churn", 0, 4e9)["request_id"]) == ["req-2"]


def test_a_failing_disk_surfaces_to_waiters_instead_of_hanging(settings: Settings) -> None:
    log = PredictionLog(_buffered(settings))

    def broken(payloads: list[bytes]) -> object:
        raise OSError(28, "No space left on device")

    log.spool.append = broken  # type: ignore[method-assign]
    log.submit(record(1))
    with pytest.raises(OSError, match="No space left"):
        log.flush(timeout=10)

    async def wait() -> None:
        await log.durable()

    with pytest.raises(OSError, match="No space left"):
        asyncio.run(wait())
    from mloop.errors import Unavailable

    with pytest.raises(Unavailable, match="cannot write"):
        log.submit(record(2))
    log.close()


def test_write_through_puts_the_frame_in_the_file_before_submit_returns(settings: Settings) -> None:
    from mloop.journal._spool import list_segments, read_frames, segment_path

    log = PredictionLog(settings)
    log.submit(record(7))
    folder = log.spool.directory
    frames = list(read_frames(segment_path(folder, list_segments(folder)[-1])))
    assert len(frames) == 1 and b"req-7" in frames[0][1]
    log.close()


def test_write_through_refuses_new_records_when_the_disk_fails(settings: Settings) -> None:
    from mloop.errors import Unavailable

    log = PredictionLog(settings)

    def broken(payloads: list[bytes]) -> object:
        raise OSError(28, "No space left on device")

    log.spool.write = broken  # type: ignore[method-assign]
    with pytest.raises(Unavailable, match="No space left"):
        log.submit(record(1))
    with pytest.raises(Unavailable, match="cannot write"):
        log.submit(record(2))
    log.close()


def test_a_compaction_pass_stops_at_the_end_it_saw_when_it_began(settings: Settings) -> None:
    log = PredictionLog(settings)
    for i in range(3):
        log.submit(record(i))
    log.flush()
    store = ParquetLogStore(settings.home)
    real_commit = store.commit
    appended = []

    def commit_then_writer_appends(*args: object, **kwargs: object) -> None:
        real_commit(*args, **kwargs)  # type: ignore[arg-type]
        appended.append(100 + len(appended))
        log.submit(record(appended[-1]))  # a busy server keeps writing meanwhile
        log.flush()

    store.commit = commit_then_writer_appends  # type: ignore[method-assign]
    assert compact_stream(store, settings.home / "spool", "predictions") == 3
    store.commit = real_commit  # type: ignore[method-assign]
    assert compact_stream(store, settings.home / "spool", "predictions") == len(appended)
    log.close()
    assert len(store.predictions("churn", 0, 4e9)) == 3 + len(appended)


def test_submit_many_writes_every_kept_record_before_returning(settings: Settings) -> None:
    from mloop.journal._spool import list_segments, read_frames, segment_path

    half = replace(settings, monitor=replace(settings.monitor, sample_rate=0.5))
    log = PredictionLog(half)
    kept = log.submit_many([record(i) for i in range(40)])
    folder = log.spool.directory
    frames = list(read_frames(segment_path(folder, list_segments(folder)[-1])))
    assert 0 < sum(kept) < 40 and len(frames) == sum(kept)
    written = {f[1].split(b'"request_id":"')[1].split(b'"')[0].decode() for f in frames}
    assert written == {f"req-{i}" for i, k in enumerate(kept) if k}
    log.wait_durable(f"req-{kept.index(True)}", timeout=10)
    log.close()

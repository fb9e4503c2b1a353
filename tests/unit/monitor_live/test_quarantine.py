"""Compaction quarantines what the log store cannot hold, and only that; nothing is lost."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from mloop.config import Settings
from mloop.journal._compact import DEAD_LETTER_FILE, compact_stream, dead_letter_count
from mloop.journal._feedback import FeedbackLog
from mloop.journal._log import PredictionLog
from mloop.journal._logstore import ParquetLogStore, RecordsRejected
from mloop.journal._spool import Spool, SpoolPosition, list_segments

from ._records import record


class PickyStore(ParquetLogStore):
    """Parquet, but refusing any batch that holds ``refused`` (or failing every write)."""

    def __init__(
        self, home: Path, refused: str | None = None, error: BaseException | None = None
    ) -> None:
        super().__init__(home)
        self.refused = refused
        self.error = error
        self.commits = 0

    def commit(
        self,
        stream: str,
        writer: Path,
        records: Sequence[Mapping[str, Any]],
        start: SpoolPosition,
        end: int,
    ) -> None:
        self.commits += 1
        if self.error is not None:
            raise self.error
        if any(r.get("request_id") == self.refused for r in records):
            raise RecordsRejected(f"{self.refused} does not fit")
        super().commit(stream, writer, records, start, end)


def _letters(settings: Settings, stream: str) -> list[dict[str, Any]]:
    path = settings.home / "spool" / stream / DEAD_LETTER_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _log_predictions(settings: Settings, n: int) -> None:
    with PredictionLog(settings) as log:
        for i in range(n):
            log.submit(record(i))


def test_a_batch_the_store_refuses_is_split_until_only_the_refused_record_is_quarantined(
    settings: Settings,
) -> None:
    _log_predictions(settings, 64)
    store = PickyStore(settings.home, refused="req-17")
    compact_stream(store, settings.home / "spool", "predictions")

    stored = store.predictions("churn", 0, 2e9)
    assert sorted(stored["request_id"]) == sorted(f"req-{i}" for i in range(64) if i != 17)
    (letter,) = _letters(settings, "predictions")
    assert letter["record"] == record(17)
    assert "the log store refused it: req-17 does not fit" in letter["reason"]
    assert {"writer", "segment", "end"} <= letter.keys()
    assert store.commits <= 2 * 7 + 1  # halving 64 records: a few commits per level

    again = compact_stream(store, settings.home / "spool", "predictions")
    assert again == 0 and len(_letters(settings, "predictions")) == 1


def test_a_store_that_cannot_be_reached_quarantines_nothing(settings: Settings) -> None:
    _log_predictions(settings, 30)
    down = PickyStore(settings.home, error=ConnectionError("connection refused"))
    with pytest.raises(ConnectionError):
        compact_stream(down, settings.home / "spool", "predictions")
    assert dead_letter_count(settings.home / "spool", "predictions") == (0, None)

    store = ParquetLogStore(settings.home)
    compact_stream(store, settings.home / "spool", "predictions")
    assert len(store.predictions("churn", 0, 2e9)) == 30


def test_a_dead_letter_is_on_disk_before_the_checkpoint_passes_it(settings: Settings) -> None:
    feedback = FeedbackLog(settings)
    feedback._append({"request_id": "poison", "row": 0, "label": "no", "ts": 1e308}, None)
    for i in range(5):
        feedback._append({"request_id": f"r{i}", "row": 0, "label": "yes", "ts": 1.7e9}, None)
    feedback.close()

    # The process dies after quarantining, before the checkpoint moves.
    crashing = PickyStore(settings.home, error=SystemExit("killed"))
    with pytest.raises(SystemExit):
        compact_stream(crashing, settings.home / "spool", "feedback")
    (first,) = _letters(settings, "feedback")
    assert first["record"]["request_id"] == "poison"

    store = ParquetLogStore(settings.home)
    compact_stream(store, settings.home / "spool", "feedback")
    assert sorted(store.feedback(0)["request_id"]) == [f"r{i}" for i in range(5)]
    # Redone after the crash: the same record at the same spool position, never lost.
    letters = _letters(settings, "feedback")
    assert {(x["writer"], x["segment"], x["end"]) for x in letters} == {
        (first["writer"], first["segment"], first["end"])
    }


def _label(i: int) -> bytes:
    return orjson.dumps({"request_id": f"r{i}", "row": 0, "label": "yes", "ts": 1.7e9})


def test_corrupt_bytes_of_a_finished_segment_are_quarantined_before_it_is_dropped(
    settings: Settings,
) -> None:
    writer = settings.home / "spool" / "feedback" / "w0"
    spool = Spool(writer, segment_bytes=600)
    spool.append([_label(i) for i in range(10)])  # segment 1
    first = writer / "seg-000000000001.log"
    damaged = bytearray(first.read_bytes())
    frame = len(damaged) // 10
    damaged[frame * 4 + 12] ^= 0xFF  # inside the fifth frame's payload
    first.write_bytes(bytes(damaged))
    spool.append([_label(i) for i in range(10, 15)])  # rolls to segment 2
    spool.close()

    store = ParquetLogStore(settings.home)
    compact_stream(store, settings.home / "spool", "feedback")

    stored = set(store.feedback(0)["request_id"])
    assert stored == {f"r{i}" for i in (0, 1, 2, 3, *range(10, 15))}
    (letter,) = _letters(settings, "feedback")
    assert base64.b64decode(letter["record"]["base64"]) == bytes(damaged[frame * 4 :])
    assert "corrupt" in letter["reason"]
    assert 1 not in list_segments(writer)

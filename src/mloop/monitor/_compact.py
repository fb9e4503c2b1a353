"""Compaction: move spooled records into the log store, exactly once, then drop old segments.

Any process may compact (the server in the background, the CLI before it reads);
an ``flock`` per writer folder keeps two compactors apart. Compaction reads only
whole frames, so it can run while the owning writer keeps appending.

A record the log store cannot hold (a time beyond the calendar, a row index beyond
the column, written by an older version or a bug) is quarantined, not retried for
ever: it is appended and fsynced to ``<spool>/<stream>/dead-letter.jsonl`` with the
reason before the checkpoint passes it, and compaction goes on with the rest. If the
store still refuses a batch, the whole batch goes there. Nothing is lost: the file
holds every such record as it was spooled, and ``mloop monitor status`` counts them.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from mloop.monitor._logstore import LogStore
from mloop.monitor._spool import (
    SpoolPosition,
    list_segments,
    read_frames,
    segment_path,
    spool_writers,
)

__all__ = [
    "DEAD_LETTER_FILE",
    "BackgroundCompactor",
    "compact_stream",
    "dead_letter_count",
    "poison_reason",
]

_log = logging.getLogger("mloop.monitor")

_MAX_RECORDS = 20_000
DEAD_LETTER_FILE = "dead-letter.jsonl"
_LAST_EPOCH_S = 253_402_300_799.0  # 9999-12-31T23:59:59Z: beyond it no date exists
_MAX_ROW = 2**31 - 1  # the row column is a 32-bit integer in SQL stores


def poison_reason(record: Any) -> str | None:
    """Why the log store cannot hold ``record``, or None when it can."""
    if not isinstance(record, dict):
        return f"a {type(record).__name__}, not an object"
    ts = record.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        return f"ts {ts!r} is not a finite epoch time"
    if not 0 <= ts <= _LAST_EPOCH_S:
        return f"ts {ts!r} is outside the years 1970 to 9999"
    row = record.get("row")
    if row is not None and (isinstance(row, bool) or not isinstance(row, int)):
        return f"row {row!r} is not a whole number"
    if row is not None and not 0 <= row <= _MAX_ROW:
        return f"row {row} is outside 0..{_MAX_ROW}"
    for key in ("request_id", "entity_key", "model"):
        value = record.get(key)
        if value is not None and not isinstance(value, str):
            return f"{key} {value!r} is not text"
    return None


def _quarantine(writer: Path, stream: str, bad: Sequence[tuple[Any, str]]) -> None:
    """Append ``(record, reason)`` pairs to the stream's dead-letter file, durably."""
    path = writer.parent / DEAD_LETTER_FILE
    lines = b"".join(
        orjson.dumps(
            {"at": time.time(), "writer": writer.name, "reason": reason, "record": record},
            default=str,
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        + b"\n"
        for record, reason in bad
    )
    with open(path, "ab") as out:
        out.write(lines)
        out.flush()
        os.fsync(out.fileno())
    _log.warning(
        "quarantined %d %s record(s) the log store cannot hold in %s (first: %s)",
        len(bad),
        stream,
        path,
        bad[0][1],
    )


def dead_letter_count(spool_root: Path, stream: str) -> tuple[int, Path | None]:
    """How many records compaction quarantined for ``stream``, and the file holding them."""
    path = spool_root / stream / DEAD_LETTER_FILE
    if not path.exists():
        return 0, None
    with open(path, "rb") as handle:
        return sum(1 for _ in handle), path


def _commit(
    store: LogStore,
    stream: str,
    writer: Path,
    payloads: list[bytes],
    start: SpoolPosition,
    end: int,
) -> None:
    """Store what the log can hold; quarantine the rest; move the checkpoint either way."""
    keep: list[dict[str, Any]] = []
    bad: list[tuple[Any, str]] = []
    for payload in payloads:
        try:
            record = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            bad.append((payload.decode("utf-8", "replace"), f"not JSON: {exc}"))
            continue
        reason = poison_reason(record)
        if reason is None:
            keep.append(record)
        else:
            bad.append((record, reason))
    if bad:
        _quarantine(writer, stream, bad)
    try:
        store.commit(stream, writer, keep, start, end)
    except Exception as exc:
        if not keep:
            raise
        _log.exception("the log store refused a %s batch; quarantining it", stream)
        _quarantine(writer, stream, [(r, f"the log store refused its batch: {exc}") for r in keep])
        store.commit(stream, writer, [], start, end)


@contextlib.contextmanager
def _compact_lock(writer: Path) -> Iterator[None]:
    with open(writer / "COMPACT.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def compact_writer(store: LogStore, stream: str, writer: Path) -> int:
    """Compact one writer folder; return the number of records stored."""
    stored = 0
    with _compact_lock(writer):
        cp = store.load_checkpoint(stream, writer)
        if cp.pending is not None:
            start, end = cp.pending
            frames = list(read_frames(segment_path(writer, start.segment), start.offset, end))
            _commit(store, stream, writer, [p for _e, p in frames], start, end)
            stored += len(frames)
        position = store.load_checkpoint(stream, writer).position
        # Stop at the end the spool had when this pass began: a writer that keeps
        # appending must not keep one compaction (and the reader waiting on it) busy.
        at_start = list_segments(writer)
        if not at_start:
            return stored
        limit_segment = at_start[-1]
        limit_offset = segment_path(writer, limit_segment).stat().st_size
        while position.segment <= limit_segment:
            segments = list_segments(writer)
            if not segments:
                break
            if position.segment not in segments:
                later = [s for s in segments if s > position.segment]
                if not later:
                    break
                position = SpoolPosition(later[0], 0)
                store.advance(stream, writer, position)
            if position.segment > limit_segment:
                break
            stop = limit_offset if position.segment == limit_segment else None
            frames = []
            path = segment_path(writer, position.segment)
            for item in read_frames(path, position.offset, stop):
                frames.append(item)
                if len(frames) >= _MAX_RECORDS:
                    break
            if frames:
                end = frames[-1][0]
                _commit(store, stream, writer, [p for _e, p in frames], position, end)
                stored += len(frames)
                position = SpoolPosition(position.segment, end)
                continue
            later = [s for s in segments if s > position.segment]
            if not later or position.segment >= limit_segment:
                break
            # The writer rolled to a new segment, so this one is complete and stored.
            position = SpoolPosition(later[0], 0)
            store.advance(stream, writer, position)
        for segment in list_segments(writer)[:-1]:
            if segment < position.segment:
                segment_path(writer, segment).unlink(missing_ok=True)
    return stored


def compact_stream(store: LogStore, spool_root: Path, stream: str) -> int:
    """Compact every writer folder of ``stream`` under ``spool_root``."""
    return sum(
        compact_writer(store, stream, writer) for writer in spool_writers(spool_root / stream)
    )


class BackgroundCompactor:
    """Compacts the prediction and feedback spools every ``interval_s`` in a daemon thread."""

    def __init__(self, store: LogStore, spool_root: Path, interval_s: float = 30.0) -> None:
        self.store = store
        self.spool_root = spool_root
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mloop-compactor", daemon=True)

    def start(self) -> BackgroundCompactor:
        """Start the thread; returns self."""
        self._thread.start()
        return self

    def run_once(self) -> int:
        """Compact both streams now; return records moved."""
        return sum(
            compact_stream(self.store, self.spool_root, s) for s in ("predictions", "feedback")
        )

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.run_once()
            except Exception:  # keep compacting later; the spool keeps the records meanwhile
                _log.exception("background compaction failed")

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop the thread after a last compaction."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        try:
            self.run_once()
        except Exception:
            _log.exception("final compaction failed")

"""Compaction: move spooled records into the log store, exactly once, then drop old segments.

Any process may compact (the server in the background, the CLI before it reads);
an ``flock`` per writer folder keeps two compactors apart. Compaction reads only
whole frames, so it can run while the owning writer keeps appending.

A record the log store cannot hold (a time beyond the calendar, a row index beyond
the column, text longer than its column: written past the door by an older version
or a bug) is quarantined, not retried for ever: it is appended and fsynced to
``<spool>/<stream>/dead-letter.jsonl`` with the reason and the record as spooled
before the checkpoint passes it, and compaction goes on with the rest. Records are
checked against the columns first (``_storable``); if the store still refuses a
batch for its content (``RecordsRejected``), the batch is split in halves until the
refused records are found, and only those are quarantined. A store that cannot be
reached is no reason to quarantine anything: the batch stays in the spool and the
next pass retries it. Bytes of a finished segment that are no whole frame (a corrupt
disk block) go to the same file, base64-encoded, before the segment is deleted.

Nothing is lost: ``mloop monitor status`` counts the quarantined lines and names the
file. A crash between the fsync of a dead letter and the checkpoint may repeat a
line on the next pass; each line carries its spool position (writer, segment,
end offset), so repeats are recognisable.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from mloop.journal._logstore import LogStore, RecordsRejected
from mloop.journal._spool import (
    SpoolPosition,
    list_segments,
    read_frames,
    segment_path,
    spool_writers,
)
from mloop.journal._storable import unstorable_reason

__all__ = [
    "DEAD_LETTER_FILE",
    "BackgroundCompactor",
    "compact_stream",
    "dead_letter_count",
]

_log = logging.getLogger("mloop.monitor")

_MAX_RECORDS = 20_000
DEAD_LETTER_FILE = "dead-letter.jsonl"

# A quarantined record: (its spool position as (segment, end offset), the record, why).
_Letter = tuple[tuple[int, int], Any, str]


def _quarantine(writer: Path, stream: str, letters: Sequence[_Letter]) -> None:
    """Append ``letters`` to the stream's dead-letter file and fsync it."""
    path = writer.parent / DEAD_LETTER_FILE
    lines = b"".join(
        orjson.dumps(
            {
                "at": time.time(),
                "writer": writer.name,
                "segment": segment,
                "end": end,
                "reason": reason,
                "record": record,
            },
            default=str,
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        + b"\n"
        for (segment, end), record, reason in letters
    )
    # Writers of several folders may quarantine at once: one locked write each.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(lines)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)  # also releases the lock
    _log.warning(
        "quarantined %d %s record(s) the log store cannot hold in %s (first: %s)",
        len(letters),
        stream,
        path,
        letters[0][2],
    )


def dead_letter_count(spool_root: Path, stream: str) -> tuple[int, Path | None]:
    """How many records compaction quarantined for ``stream``, and the file holding them."""
    path = spool_root / stream / DEAD_LETTER_FILE
    try:
        with open(path, "rb") as handle:
            return sum(1 for _ in handle), path
    except FileNotFoundError:
        return 0, None


def _commit(
    store: LogStore,
    stream: str,
    writer: Path,
    frames: Sequence[tuple[int, bytes]],
    start: SpoolPosition,
    end: int,
) -> None:
    """Store the records of frames ``start``..``end`` the log can hold; quarantine the rest."""
    keep: list[tuple[int, dict[str, Any]]] = []
    bad: list[_Letter] = []
    for after, payload in frames:
        try:
            record = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            where = (start.segment, after)
            bad.append((where, payload.decode("utf-8", "replace"), f"not JSON: {exc}"))
            continue
        reason = unstorable_reason(stream, record)
        if reason is None:
            keep.append((after, record))
        else:
            bad.append(((start.segment, after), record, reason))
    if bad:
        _quarantine(writer, stream, bad)
    _store(store, stream, writer, keep, start, end)


def _store(
    store: LogStore,
    stream: str,
    writer: Path,
    records: Sequence[tuple[int, dict[str, Any]]],
    start: SpoolPosition,
    end: int,
) -> None:
    """Commit ``records`` (with their frames' end offsets) as the range ``start``..``end``.

    When the store refuses them for their content, commit each half on its own
    (the halves' ranges meet at a frame boundary), down to the single refused record,
    which is quarantined; its range then passes with nothing stored.
    """
    try:
        store.commit(stream, writer, [r for _e, r in records], start, end)
        return
    except RecordsRejected as exc:
        if not records:
            raise  # nothing to refuse: not the records' fault
        if len(records) == 1:
            where = (start.segment, records[0][0])
            _quarantine(
                writer, stream, [(where, records[0][1], f"the log store refused it: {exc}")]
            )
            store.commit(stream, writer, [], start, end)
            return
    half = len(records) // 2
    middle = records[half - 1][0]
    _store(store, stream, writer, records[:half], start, middle)
    _store(store, stream, writer, records[half:], SpoolPosition(start.segment, middle), end)


def _salvage(store: LogStore, stream: str, writer: Path, position: SpoolPosition) -> None:
    """Quarantine the bytes of a finished segment after its last whole frame (corruption)."""
    path = segment_path(writer, position.segment)
    with open(path, "rb") as handle:
        handle.seek(position.offset)
        tail = handle.read()
    if not tail:
        return
    size = position.offset + len(tail)
    record = {"offset": position.offset, "base64": base64.b64encode(tail).decode()}
    reason = f"{len(tail)} bytes at offset {position.offset} are no whole frame (corrupt)"
    _quarantine(writer, stream, [((position.segment, size), record, reason)])
    store.advance(stream, writer, SpoolPosition(position.segment, size))


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
            _commit(store, stream, writer, frames, start, end)
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
                _commit(store, stream, writer, frames, position, frames[-1][0])
                stored += len(frames)
                position = SpoolPosition(position.segment, frames[-1][0])
                continue
            later = [s for s in segments if s > position.segment]
            if not later or position.segment >= limit_segment:
                break
            # The writer rolled to a new segment, so this one is complete: whatever is
            # left after its last whole frame is damage, kept before the segment goes.
            _salvage(store, stream, writer, position)
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

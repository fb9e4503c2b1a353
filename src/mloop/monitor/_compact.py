"""Compaction: move spooled records into the log store, exactly once, then drop old segments.

Any process may compact (the server in the background, the CLI before it reads);
an ``flock`` per writer folder keeps two compactors apart. Compaction reads only
whole frames, so it can run while the owning writer keeps appending.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
from collections.abc import Iterator
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

__all__ = ["BackgroundCompactor", "compact_stream"]

_log = logging.getLogger("mloop.monitor")

_MAX_RECORDS = 20_000


@contextlib.contextmanager
def _compact_lock(writer: Path) -> Iterator[None]:
    with open(writer / "COMPACT.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _decode(payloads: list[bytes]) -> list[dict[str, Any]]:
    return [orjson.loads(p) for p in payloads]


def compact_writer(store: LogStore, stream: str, writer: Path) -> int:
    """Compact one writer folder; return the number of records stored."""
    stored = 0
    with _compact_lock(writer):
        cp = store.load_checkpoint(stream, writer)
        if cp.pending is not None:
            start, end = cp.pending
            frames = list(read_frames(segment_path(writer, start.segment), start.offset, end))
            store.commit(stream, writer, _decode([p for _e, p in frames]), start, end)
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
                store.commit(stream, writer, _decode([p for _e, p in frames]), position, end)
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

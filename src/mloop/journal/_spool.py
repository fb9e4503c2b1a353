"""A durable local spool: append-only segment files of length+CRC32 framed records.

mloop's own write-ahead log. One writer process owns a spool folder (an ``flock``
on ``LOCK``); each ``append`` writes a batch of frames and fsyncs once, so a batch
is on disk when ``append`` returns. Frames are ``<u32 length><u32 crc32><payload>``.
A crash can leave a torn frame at the end of the last segment; on open the owner
truncates the tail back to the last whole frame. Frames that were acknowledged
(fsynced) are never torn, so recovery loses nothing acknowledged and duplicates
nothing. Readers (the compactor, possibly in another process) stop at the first
incomplete frame without touching the file.
"""

from __future__ import annotations

import fcntl
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mloop.errors import ConfigurationError

__all__ = ["Spool", "SpoolPosition", "list_segments", "read_frames", "spool_writers"]

_HEADER = struct.Struct("<II")
_MAX_FRAME = 256 * 1024 * 1024
_SEGMENT_PREFIX = "seg-"
_SEGMENT_SUFFIX = ".log"


@dataclass(frozen=True, order=True)
class SpoolPosition:
    """A place in a spool: segment number and byte offset inside it."""

    segment: int
    offset: int


def segment_path(directory: Path, segment: int) -> Path:
    """File name of segment number ``segment``."""
    return directory / f"{_SEGMENT_PREFIX}{segment:012d}{_SEGMENT_SUFFIX}"


def list_segments(directory: Path) -> list[int]:
    """Segment numbers present in ``directory``, ascending."""
    found = []
    for path in directory.glob(f"{_SEGMENT_PREFIX}*{_SEGMENT_SUFFIX}"):
        stem = path.name[len(_SEGMENT_PREFIX) : -len(_SEGMENT_SUFFIX)]
        if stem.isdigit():
            found.append(int(stem))
    return sorted(found)


def spool_writers(stream_dir: Path) -> list[Path]:
    """Every writer folder under one stream's spool folder (``w0``, ``w1`` …)."""
    if not stream_dir.is_dir():
        return []
    return sorted(p for p in stream_dir.iterdir() if p.is_dir() and p.name.startswith("w"))


def encode_frame(payload: bytes) -> bytes:
    """``payload`` framed with its length and CRC32."""
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def read_frames(path: Path, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, bytes]]:
    """Yield ``(end_offset, payload)`` for each whole frame from ``start`` (up to ``stop``)."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed in finally; generator body
    except FileNotFoundError:
        return
    try:
        handle.seek(start)
        offset = start
        while stop is None or offset < stop:
            header = handle.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return
            length, crc = _HEADER.unpack(header)
            if length > _MAX_FRAME:
                return
            payload = handle.read(length)
            if len(payload) < length or zlib.crc32(payload) != crc:
                return
            offset += _HEADER.size + length
            yield offset, payload
    finally:
        handle.close()


def valid_length(path: Path) -> int:
    """Bytes of ``path`` covered by whole, checksummed frames."""
    end = 0
    for offset, _payload in read_frames(path):
        end = offset
    return end


class Spool:
    """The writer side of one spool folder; one process at a time (enforced by a lock)."""

    def __init__(self, directory: Path, *, segment_bytes: int = 64 * 1024 * 1024) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self._lock = open(self.directory / "LOCK", "a+b")  # noqa: SIM115 - held for life
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise ConfigurationError(
                f"Spool folder {self.directory} is in use by another process; "
                "each writer needs its own folder (see PredictionLog)."
            ) from None
        self.recovered_bytes = 0
        self._segment, self._handle, self._size = self._recover()

    @classmethod
    def claim(cls, stream_dir: Path, **kwargs: int) -> Spool:
        """Open the first writer folder ``w<k>`` under ``stream_dir`` no live process holds."""
        k = 0
        while True:
            try:
                return cls(Path(stream_dir) / f"w{k}", **kwargs)
            except ConfigurationError:
                k += 1
                if k > 1024:
                    raise

    def _recover(self) -> tuple[int, int, int]:
        segments = list_segments(self.directory)
        segment = segments[-1] if segments else 1
        path = segment_path(self.directory, segment)
        size = path.stat().st_size if path.exists() else 0
        good = valid_length(path) if size else 0
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if good < size:
            # A torn tail from a crash mid-write: nothing in it was acknowledged.
            os.ftruncate(fd, good)
            os.fsync(fd)
            self.recovered_bytes = size - good
        if not segments:
            _fsync_dir(self.directory)
        return segment, fd, good

    @property
    def position(self) -> SpoolPosition:
        """Where the next frame will be written."""
        return SpoolPosition(self._segment, self._size)

    def append(self, payloads: Sequence[bytes]) -> SpoolPosition:
        """Write ``payloads`` as frames and fsync; return the position after them."""
        position = self.write(payloads)
        if payloads:
            os.fsync(self._handle)
        return position

    def write(self, payloads: Sequence[bytes]) -> SpoolPosition:
        """Write ``payloads`` as frames without fsync: safe from a killed process, not power loss."""
        if not payloads:
            return self.position
        if self._size >= self.segment_bytes:
            self._roll()
        data = b"".join(encode_frame(p) for p in payloads)
        view = memoryview(data)
        while view:
            written = os.write(self._handle, view)
            view = view[written:]
        self._size += len(data)
        return self.position

    def dup_handle(self) -> int:
        """A duplicate of the current segment's descriptor, to fsync it from another thread."""
        return os.dup(self._handle)

    def _roll(self) -> None:
        os.fsync(self._handle)  # frames written but not yet synced stay durable
        os.close(self._handle)
        self._segment += 1
        self._handle = os.open(
            segment_path(self.directory, self._segment),
            os.O_WRONLY | os.O_CREAT | os.O_APPEND,
            0o644,
        )
        self._size = 0
        _fsync_dir(self.directory)

    def close(self) -> None:
        """Release the file and the folder lock."""
        if self._handle >= 0:
            os.close(self._handle)
            self._handle = -1
        if not self._lock.closed:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

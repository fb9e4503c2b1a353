"""The prediction log's front end: non-blocking submit, a writer thread, durability acks.

mloop's own group-commit writer. With ``monitor.write_through`` (the default)
``submit`` encodes the record and writes its frame to the spool file before it
returns, so an answered request's record survives the process being killed
(SIGKILL leaves the kernel's page cache intact); a background thread fsyncs
once per batch for power-loss durability. Without it, ``submit`` appends to an
in-memory buffer and the background thread encodes, writes and fsyncs per batch. The writer lingers
up to ``spool_flush_ms`` after the first buffered record, so a busy stream costs one
fsync per interval (not one per record) and every record is on disk within about
``spool_flush_ms``. When a caller waits for disk (``wait_durable``, ``await
durable``, ``flush``) the writer stops lingering and writes at once; while one
fsync runs the next batch accumulates (group commit).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import threading
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import orjson

from mloop.config import Settings
from mloop.errors import DeadlineExceeded, InvalidInput, Overloaded, Unavailable
from mloop.journal._spool import Spool

__all__ = ["RECENT_REQUEST_IDS", "DurableLog", "PredictionLog", "sampled"]

_log = logging.getLogger("mloop.monitor")

_REQUIRED = ("request_id", "model", "version", "inputs", "outputs")
RECENT_REQUEST_IDS = 32_768  # request ids whose model feedback can tell without the log


def sampled(request_id: str, rate: float) -> bool:
    """Deterministic sampling: the same request id is always in or always out."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    return zlib.crc32(request_id.encode()) / 4294967296.0 < rate


class DurableLog:
    """Records appended to a local spool by a background group-commit writer thread."""

    stream = "records"

    def __init__(
        self,
        settings: Settings,
        *,
        directory: Path | None = None,
        max_pending: int = 200_000,
        max_batch: int = 8192,
    ) -> None:
        self.settings = settings
        self.flush_s = max(settings.monitor.spool_flush_ms, 0.0) / 1000.0
        self.max_pending = max_pending
        self.max_batch = max_batch
        self.stream_dir = directory or settings.home / "spool" / self.stream
        self.spool = Spool.claim(self.stream_dir)
        self.write_through = settings.monitor.write_through
        self._io_lock = threading.Lock()  # orders write-through frames and their sequence
        self._cond = threading.Condition()
        self._buffer: list[Mapping[str, Any]] = []
        self._written = 0  # write-through: sequence number of the last frame written
        self._submitted = 0  # sequence number of the last submitted record
        self._durable = 0  # sequence number of the last record on disk
        self._pending_ids: dict[str, int] = {}
        self._pending_order: collections.deque[tuple[int, str]] = collections.deque()
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._closed = False
        self._sync_waiters = 0
        self._error: BaseException | None = None
        self.dropped = 0
        self._thread = threading.Thread(
            target=self._run, name=f"mloop-{self.stream}-writer", daemon=True
        )
        self._thread.start()

    # --- producer side ---------------------------------------------------------------

    def _append(self, record: Mapping[str, Any], key: str | None) -> int:
        if self.write_through:
            return self._write_now(record, key)
        with self._cond:
            if self._closed:
                raise InvalidInput(f"The {self.stream} log is closed; no more records accepted.")
            if self._error is not None:
                raise Unavailable(
                    f"The {self.stream} log cannot write to {self.spool.directory}: "
                    f"{self._error}. Fix the disk and restart; records already acknowledged "
                    "are safe."
                )
            if len(self._buffer) >= self.max_pending:
                self.dropped += 1
                raise Overloaded(
                    f"The {self.stream} log has {len(self._buffer)} records waiting for disk; "
                    "retry shortly.",
                    retry_after=max(self.flush_s, 0.05) * 5,
                )
            self._submitted += 1
            seq = self._submitted
            self._buffer.append(record)
            if key is not None:
                self._pending_ids[key] = seq
                self._pending_order.append((seq, key))
            if len(self._buffer) == 1:
                self._cond.notify_all()
            return seq

    def _check_open(self) -> None:
        if self._closed:
            raise InvalidInput(f"The {self.stream} log is closed; no more records accepted.")
        if self._error is not None:
            raise Unavailable(
                f"The {self.stream} log cannot write to {self.spool.directory}: "
                f"{self._error}. Fix the disk and restart; records already acknowledged "
                "are safe."
            )

    def _write_now(self, record: Mapping[str, Any], key: str | None) -> int:
        return self._write_many([record], [key])

    def _write_many(self, records: Sequence[Mapping[str, Any]], keys: Sequence[str | None]) -> int:
        """Write-through of several records with one ``write`` call (one syscall, not one each)."""
        encoded = [self._encode(r) for r in records]
        payloads = [p for p in encoded if p is not None]
        with self._io_lock:
            with self._cond:
                self._check_open()
                first = self._submitted + 1
                self._submitted += len(records)
                seq = self._submitted
            try:
                if payloads:
                    self.spool.write(payloads)
            except OSError as exc:
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                raise Unavailable(
                    f"The {self.stream} log cannot write to {self.spool.directory}: {exc}."
                ) from exc
            with self._cond:
                # Wake the syncer only when it sleeps for lack of frames; while it lingers
                # it wakes by itself, and waking it per request costs a GIL hand-off each.
                idle = self._written <= self._durable
                self._written = seq
                for at, key in enumerate(keys, first):
                    if key is not None:
                        self._pending_ids[key] = at
                        self._pending_order.append((at, key))
                if idle:
                    self._cond.notify_all()
        return seq

    def flush(self, timeout: float | None = 30.0) -> None:
        """Block until every record submitted so far is on disk."""
        with self._cond:
            target = self._submitted
        self._wait_seq(target, timeout)

    def wait_durable(self, request_id: str | None = None, timeout: float | None = 30.0) -> None:
        """Block until ``request_id`` (or everything submitted so far) is on disk."""
        if request_id is None:
            self.flush(timeout)
            return
        with self._cond:
            target = self._pending_ids.get(request_id, 0)
        self._wait_seq(target, timeout)

    async def durable(self, request_ids: str | Iterable[str] | None = None) -> None:
        """Wait, without blocking the event loop, until the records are on disk."""
        with self._cond:
            if request_ids is None:
                target = self._submitted
            else:
                ids = [request_ids] if isinstance(request_ids, str) else list(request_ids)
                target = max((self._pending_ids.get(i, 0) for i in ids), default=0)
            self._raise_if_failed()
            if target <= self._durable:
                return
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append((target, loop, future))
            self._cond.notify_all()
        await future

    def _wait_seq(self, target: int, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._sync_waiters += 1
            self._cond.notify_all()
            try:
                while self._durable < target:
                    self._raise_if_failed()
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise DeadlineExceeded(
                            f"{self.stream} records were not on disk within {timeout} s."
                        )
                    self._cond.wait(remaining)
            finally:
                self._sync_waiters -= 1
            self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise OSError(f"The {self.stream} spool writer failed: {self._error}") from self._error

    # --- writer thread ---------------------------------------------------------------

    def _run(self) -> None:
        if self.write_through:
            self._run_syncer()
            return
        while True:
            with self._cond:
                while not self._buffer and not self._closed:
                    self._cond.wait()
                if not self._buffer and self._closed:
                    return
                # Linger up to the flush interval so a quiet stream costs few fsyncs, but
                # write at once when someone waits for disk (group commit does the rest).
                deadline = time.monotonic() + self.flush_s
                while (
                    not self._closed and not self._urgent() and len(self._buffer) < self.max_batch
                ):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                batch = self._buffer[: self.max_batch]
                del self._buffer[: self.max_batch]
                end_seq = self._durable + len(batch)
            try:
                payloads = [self._encode(r) for r in batch]
                self.spool.append([p for p in payloads if p is not None])
            except BaseException as exc:  # a full disk must not hang callers forever
                _log.exception("%s spool append failed", self.stream)
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                self._resolve(end_seq, exc)
                return
            self._mark_durable(end_seq)

    def _run_syncer(self) -> None:
        """Write-through mode: frames are already written; fsync them in groups."""
        while True:
            with self._cond:
                while self._written <= self._durable and not self._closed:
                    self._cond.wait()
                if self._written <= self._durable and self._closed:
                    return
                deadline = time.monotonic() + self.flush_s
                while not self._closed and not self._urgent():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            with self._io_lock:
                with self._cond:
                    target = self._written
                fd = self.spool.dup_handle()
            try:
                os.fsync(fd)
            except OSError as exc:
                _log.exception("%s spool fsync failed", self.stream)
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                self._resolve(target, exc)
                return
            finally:
                os.close(fd)
            self._mark_durable(target)

    def _mark_durable(self, end_seq: int) -> None:
        with self._cond:
            self._durable = max(self._durable, end_seq)
            order, pending = self._pending_order, self._pending_ids
            while order and order[0][0] <= end_seq:
                seq, key = order.popleft()
                if pending.get(key) == seq:
                    del pending[key]
            self._cond.notify_all()
        self._resolve(end_seq, None)

    def _urgent(self) -> bool:
        return self._sync_waiters > 0 or bool(self._waiters)

    def _encode(self, record: Mapping[str, Any]) -> bytes | None:
        try:
            return orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY)
        except TypeError:
            _log.warning("dropping a %s record that is not JSON-serialisable", self.stream)
            self.dropped += 1
            return None

    def _resolve(self, durable: int, error: BaseException | None) -> None:
        with self._cond:
            ready = [w for w in self._waiters if w[0] <= durable or error is not None]
            self._waiters = [w for w in self._waiters if w not in ready]
        for _seq, loop, future in ready:
            loop.call_soon_threadsafe(_settle, future, error)

    def close(self, timeout: float | None = 30.0) -> None:
        """Write everything buffered, stop the writer thread and release the spool."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)
        self.spool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(OSError(f"spool writer failed: {error}"))


class PredictionLog(DurableLog):
    """The durable log serving hands every prediction to (the ``prediction_sink``)."""

    stream = "predictions"

    def __init__(
        self, settings: Settings, *, recent_ids: int = RECENT_REQUEST_IDS, **kwargs: Any
    ) -> None:
        super().__init__(settings, **kwargs)
        self.sample_rate = settings.monitor.sample_rate
        # Which model answered each recent request, for checking labels at the door
        # without reading the log (which may not hold the request yet).
        self._recent: collections.OrderedDict[str, str] = collections.OrderedDict()
        self._recent_cap = recent_ids

    def model_of(self, request_id: str) -> str | None:
        """The model that answered ``request_id``, if this log took it among its recent ones."""
        return self._recent.get(request_id)

    def _remember(self, request_id: str, model: Any) -> None:
        recent = self._recent
        recent[request_id] = str(model)
        if len(recent) > self._recent_cap:
            recent.popitem(last=False)

    def submit(self, record: Mapping[str, Any]) -> bool:
        """Queue one request's record (all rows); return False if sampling skipped it.

        Non-blocking and thread-safe. Raises ``Overloaded`` when the disk cannot keep up.
        """
        missing = [k for k in _REQUIRED if k not in record]
        if missing:
            raise InvalidInput(
                f"Prediction record lacks {missing}; expected keys request_id, ts, model, "
                "version, inputs, outputs, latency_ms, entity_keys."
            )
        request_id = str(record["request_id"])
        self._remember(request_id, record["model"])
        if not sampled(request_id, self.sample_rate):
            return False
        self._append(record, request_id)
        return True

    def submit_many(self, records: Sequence[Mapping[str, Any]]) -> list[bool]:
        """``submit`` for several records at once: with write-through, one write for all."""
        if not self.write_through:
            return [self.submit(r) for r in records]
        kept: list[Mapping[str, Any]] = []
        keys: list[str | None] = []
        out: list[bool] = []
        for record in records:
            missing = [k for k in _REQUIRED if k not in record]
            if missing:
                raise InvalidInput(
                    f"Prediction record lacks {missing}; expected keys request_id, ts, model, "
                    "version, inputs, outputs, latency_ms, entity_keys."
                )
            request_id = str(record["request_id"])
            self._remember(request_id, record["model"])
            keep = sampled(request_id, self.sample_rate)
            out.append(keep)
            if keep:
                kept.append(record)
                keys.append(request_id)
        if kept:
            self._write_many(kept, keys)
        return out

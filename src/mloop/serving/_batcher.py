"""Adaptive micro-batching, mloop's own algorithm.

One ``Batcher`` per model version keeps at most one batch in flight in a worker
thread. A request that arrives while the worker is idle is dispatched at once, so
light traffic never waits for a batch to fill. Requests that arrive while the
worker is busy queue up; when it frees, everything queued (up to
``max_batch_size`` rows, interactive lane first) goes out as one call and the
results are fanned back out. Under sustained load (the previous batch held more
than one request) the batcher may linger up to ``max_delay_ms`` for the batch to
grow back to the previous size; that is the most latency batching ever adds.

With ``lone_inline_rows`` (``serving.lone_inline_rows``, 16 by default) a lone small
request into an idle batcher that is not under load predicts on the event loop one
iteration after it arrived, without the two thread wake-ups a worker costs; anything
that arrived with it, and every model slower than 2 ms a request, still goes to the
worker.

With ``inline=True`` (``serving.predict_threads = 0``) the batch runs on the event
loop itself, one loop iteration after the first request of the batch arrived, so
every request parsed in that iteration joins it. That saves two thread wake-ups per
batch, which dominate one-row latency on a busy two-core machine.

Admission control lives here too: the queue is bounded (``queue_limit``
requests; the ``batch`` lane may use only part of it so interactive traffic
always finds room) and a full queue raises ``Overloaded`` with a Retry-After
estimated from the measured throughput.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from mloop.errors import Overloaded
from mloop.serving._tracing import BatchTiming, batch_timing

__all__ = ["Batcher", "Priority"]

P = TypeVar("P")
R = TypeVar("R")
Priority = Literal["interactive", "batch"]

_BATCH_LANE_SHARE = 0.5
# A lone request runs on the event loop only while such requests took less than this:
# a slow model must never stall the loop (and every other connection) on its own.
_LONE_INLINE_BUDGET_S = 0.002


@dataclass(slots=True)
class _Item(Generic[P, R]):
    payload: P
    rows: int
    future: asyncio.Future[R]
    timing: BatchTiming | None = None  # stamped only for a traced request


class Batcher(Generic[P, R]):
    """Groups concurrent requests for one model version into single predict calls."""

    def __init__(
        self,
        run: Callable[[Sequence[P]], Sequence[R | BaseException]],
        *,
        max_batch_size: int = 64,
        max_delay_ms: float = 2.0,
        queue_limit: int = 256,
        executor: Executor | None = None,
        on_batch: Callable[[int, float], None] | None = None,
        name: str = "",
        inline: bool = False,
        lone_inline_rows: int = 0,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.run = run
        self.timer = timer  # measures predict calls; tests inject one to be deterministic
        self.max_batch_size = max(1, max_batch_size)
        self.max_delay_s = max(0.0, max_delay_ms) / 1000.0
        self.queue_limit = max(1, queue_limit)
        self.executor = executor
        self.on_batch = on_batch
        self.name = name
        self.inline = inline
        self.lone_inline_rows = max(0, lone_inline_rows)
        self._scheduled = False
        self._lanes: tuple[deque[_Item[P, R]], deque[_Item[P, R]]] = (deque(), deque())
        self._busy = False
        self._last_batch = 1
        self._linger: asyncio.TimerHandle | None = None
        self._rows_per_s = 0.0  # EWMA of measured throughput, for Retry-After
        self._lone_s = float("inf")  # EWMA of a lone small request's predict time

    @property
    def depth(self) -> int:
        """Requests waiting (not counting the batch in flight)."""
        return len(self._lanes[0]) + len(self._lanes[1])

    @property
    def busy(self) -> bool:
        """True while a batch is running in the worker."""
        return self._busy

    def submit(
        self, payload: P, rows: int = 1, priority: Priority = "interactive"
    ) -> asyncio.Future[R]:
        """Queue one request; its future resolves with this request's result."""
        depth = self.depth
        limit = (
            self.queue_limit
            if priority == "interactive"
            else int(self.queue_limit * _BATCH_LANE_SHARE)
        )
        if depth >= limit:
            raise Overloaded(
                f"Model {self.name} has {depth} requests queued (limit {limit} for "
                f"{priority} traffic); retry after the indicated delay or lower the request rate.",
                retry_after=self._retry_after(),
                queue_depth=depth,
            )
        loop = asyncio.get_running_loop()
        item: _Item[P, R] = _Item(payload, max(1, rows), loop.create_future(), batch_timing())
        if item.timing is not None:
            item.timing.queued_ns = time.time_ns()
        self._lanes[0 if priority == "interactive" else 1].append(item)
        if not self._busy and not self._scheduled:
            if self._linger is None:
                self._start(loop)
            elif self._queued_rows() >= min(self._last_batch, self.max_batch_size):
                self._linger.cancel()
                self._linger = None
                self._dispatch(loop, on_loop=self.inline)
        return item.future

    def _lone(self) -> bool:
        """True when a lone small request of a fast model waits: predict it on the loop.

        Handing one row to a worker thread and back costs two thread wake-ups (on an idle
        machine each is a cross-CPU wake of a sleeping thread), which is most of what the
        server adds at light load. Only models whose lone requests measured under 2 ms
        qualify (the first one goes to the worker and is timed), so a slow model never
        blocks the loop.
        """
        return (
            self.depth == 1
            and self._queued_rows() <= self.lone_inline_rows
            and self._lone_s <= _LONE_INLINE_BUDGET_S
        )

    def _queued_rows(self) -> int:
        return sum(i.rows for lane in self._lanes for i in lane)

    def _retry_after(self) -> float:
        rows = self._queued_rows()
        if self._rows_per_s <= 0:
            return 1.0
        return max(0.05, rows / self._rows_per_s)

    def _take(self) -> list[_Item[P, R]]:
        batch: list[_Item[P, R]] = []
        rows = 0
        for lane in self._lanes:
            while lane:
                item = lane[0]
                if item.future.done():  # cancelled by its deadline: do not compute it
                    lane.popleft()
                    continue
                if batch and rows + item.rows > self.max_batch_size:
                    return batch
                lane.popleft()
                batch.append(item)
                rows += item.rows
        return batch

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.inline or (self.lone_inline_rows and self._last_batch == 1):
            # Wait one loop iteration: requests parsed in this one join the batch, and
            # only then is it known whether a request is alone.
            self._scheduled = True
            loop.call_soon(self._dispatch_next, loop)
        else:
            self._dispatch(loop, on_loop=False)

    def _dispatch_next(self, loop: asyncio.AbstractEventLoop) -> None:
        self._dispatch(loop, on_loop=self.inline or self._lone())

    def _dispatch(self, loop: asyncio.AbstractEventLoop, on_loop: bool) -> None:
        self._linger = None
        self._scheduled = False
        batch = self._take()
        if not batch:
            return
        self._busy = True
        started = self.timer()
        payloads = [i.payload for i in batch]
        _stamp_dispatch(batch)
        if on_loop:
            done: asyncio.Future[Sequence[R | BaseException]] = loop.create_future()
            try:
                done.set_result(self.run(payloads))
            except Exception as exc:  # delivered to every request of the batch
                done.set_exception(exc)
            self._finish(loop, batch, done, started)
            return
        work = loop.run_in_executor(self.executor, self.run, payloads)
        work.add_done_callback(lambda f: self._finish(loop, batch, f, started))

    def _finish(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[_Item[P, R]],
        work: asyncio.Future[Sequence[R | BaseException]],
        started: float,
    ) -> None:
        elapsed = self.timer() - started
        rows = sum(i.rows for i in batch)
        if elapsed > 0:
            rate = rows / elapsed
            self._rows_per_s = (
                rate if self._rows_per_s == 0 else 0.8 * self._rows_per_s + 0.2 * rate
            )
        if len(batch) == 1 and rows <= self.lone_inline_rows:
            self._lone_s = (
                elapsed if self._lone_s == float("inf") else 0.7 * self._lone_s + 0.3 * elapsed
            )
        exc = work.exception()
        results: Sequence[Any] = [exc] * len(batch) if exc is not None else work.result()
        _stamp_finish(batch)
        for item, result in zip(batch, results, strict=True):
            if item.future.done():
                continue
            if isinstance(result, BaseException):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)
        if self.on_batch is not None:
            self.on_batch(rows, elapsed)
        self._last_batch = rows
        self._busy = False
        if not self.depth:
            return
        target = min(rows, self.max_batch_size)
        if len(batch) > 1 and self.max_delay_s > 0 and self._queued_rows() < target:
            self._linger = loop.call_later(self.max_delay_s, self._dispatch, loop, self.inline)
        else:
            self._start(loop)


def _stamp_dispatch(batch: list[_Item[Any, Any]]) -> None:
    """Tell traced requests when their batch started and what it held."""
    now = 0
    rows = 0
    for item in batch:
        if item.timing is not None:
            if not now:
                now = time.time_ns()
                rows = sum(i.rows for i in batch)
            item.timing.dispatched_ns = now
            item.timing.batch_rows = rows
            item.timing.batch_requests = len(batch)


def _stamp_finish(batch: list[_Item[Any, Any]]) -> None:
    """Tell traced requests when their batch's predict call returned."""
    now = 0
    for item in batch:
        if item.timing is not None:
            now = now or time.time_ns()
            item.timing.finished_ns = now

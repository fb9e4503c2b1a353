"""Per-request deadlines that share one event-loop timer.

mloop's own, on the hot path: ``asyncio.timeout`` arms and cancels a loop timer for
every request, about 20 us of a ~1 ms single-row request on uvloop. Here one timer,
armed for the earliest pending deadline, serves every request in flight; a request
that finishes in time costs a heap push and a flag. Used like ``asyncio.timeout``
(but with a plain ``with``): when the deadline passes the task is cancelled, and
leaving the block turns that cancellation, and only that one, into ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from types import TracebackType

__all__ = ["Deadline", "Deadlines"]


class Deadline:
    """One request's deadline, a context manager around the guarded work."""

    __slots__ = ("cancelling", "done", "expired", "task", "when")

    def __init__(self, when: float, task: asyncio.Task[object]) -> None:
        self.when = when
        self.task = task
        self.cancelling = task.cancelling()
        self.expired = False
        self.done = False

    def __enter__(self) -> Deadline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.done = True
        if (
            self.expired
            and exc_type is asyncio.CancelledError
            and self.task.uncancel() <= self.cancelling
        ):
            raise TimeoutError from exc


class Deadlines:
    """Deadlines of the requests in flight on one event loop, under one timer."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._loop: asyncio.AbstractEventLoop | None = None

    def within(self, timeout_s: float) -> Deadline:
        """A deadline ``timeout_s`` from now for the current task: ``with d.within(t): ...``."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Deadlines.within must be called from a task")
        loop = task.get_loop()
        if loop is not self._loop:  # a new loop (a restarted app): the old timer is gone
            self._heap, self._timer, self._timer_at, self._loop = [], None, float("inf"), loop
        deadline = Deadline(loop.time() + timeout_s, task)
        heap = self._heap
        while heap and heap[0][2].done:  # requests mostly finish in order: keep it small
            heapq.heappop(heap)
        heapq.heappush(heap, (deadline.when, next(self._order), deadline))
        if deadline.when < self._timer_at:
            self._arm(loop, deadline.when)
        return deadline

    def __len__(self) -> int:
        return sum(1 for _, _, d in self._heap if not d.done)

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(when, self._fire, loop)
        self._timer_at = when

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:
            return
        self._timer, self._timer_at = None, float("inf")
        heap = self._heap
        now = loop.time()
        while heap and (heap[0][2].done or heap[0][0] <= now):
            _, _, deadline = heapq.heappop(heap)
            if not deadline.done:
                deadline.expired = True
                deadline.task.cancel()
        if heap:
            self._arm(loop, heap[0][0])

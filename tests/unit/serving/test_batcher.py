"""The micro-batcher: immediate dispatch when idle, batching under load, bounded queue."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence

import pytest

from mloop.errors import Overloaded
from mloop.serving import Batcher

pytestmark = pytest.mark.anyio


class Gate:
    """A run function that records batches and blocks until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.started = threading.Event()

    def __call__(self, payloads: Sequence[int]) -> list[int | BaseException]:
        self.batches.append(list(payloads))
        self.started.set()
        self.release.wait(5)
        return [p * 10 if p >= 0 else ValueError(f"bad {p}") for p in payloads]


async def test_idle_batcher_dispatches_a_lone_request_at_once() -> None:
    gate = Gate()
    gate.release.set()
    batcher: Batcher[int, int] = Batcher(gate, max_delay_ms=1000)
    assert await batcher.submit(1) == 10
    assert gate.batches == [[1]]


async def test_requests_arriving_while_busy_go_out_as_one_batch() -> None:
    gate = Gate()
    batcher: Batcher[int, int] = Batcher(gate, max_batch_size=8, max_delay_ms=0)
    first = batcher.submit(1)
    await asyncio.to_thread(gate.started.wait, 5)
    rest = [batcher.submit(i) for i in range(2, 6)]
    assert batcher.depth == 4
    gate.release.set()
    assert await asyncio.gather(first, *rest) == [10, 20, 30, 40, 50]
    assert gate.batches == [[1], [2, 3, 4, 5]]


async def test_batch_size_is_bounded_in_rows() -> None:
    gate = Gate()
    batcher: Batcher[int, int] = Batcher(gate, max_batch_size=3, max_delay_ms=0)
    first = batcher.submit(0)
    await asyncio.to_thread(gate.started.wait, 5)
    rest = [batcher.submit(i, rows=2) for i in range(1, 4)]
    gate.release.set()
    await asyncio.gather(first, *rest)
    assert gate.batches == [[0], [1], [2], [3]]


async def test_one_failing_request_does_not_fail_its_batch() -> None:
    gate = Gate()
    batcher: Batcher[int, int] = Batcher(gate, max_delay_ms=0)
    first = batcher.submit(1)
    await asyncio.to_thread(gate.started.wait, 5)
    bad, good = batcher.submit(-1), batcher.submit(2)
    gate.release.set()
    assert await first == 10
    with pytest.raises(ValueError, match="bad -1"):
        await bad
    assert await good == 20


async def test_full_queue_refuses_with_retry_after() -> None:
    gate = Gate()
    batcher: Batcher[int, int] = Batcher(gate, queue_limit=2, name="churn:1")
    first = batcher.submit(1)
    await asyncio.to_thread(gate.started.wait, 5)
    queued = [batcher.submit(2), batcher.submit(3)]
    with pytest.raises(Overloaded) as info:
        batcher.submit(4)
    assert info.value.status_code == 429
    assert "Retry-After" in info.value.headers()
    gate.release.set()
    await asyncio.gather(first, *queued)


async def test_interactive_lane_goes_first_and_batch_lane_has_less_room() -> None:
    gate = Gate()
    batcher: Batcher[int, int] = Batcher(gate, queue_limit=4, max_batch_size=1, max_delay_ms=0)
    first = batcher.submit(0)
    await asyncio.to_thread(gate.started.wait, 5)
    low = [batcher.submit(1, priority="batch"), batcher.submit(2, priority="batch")]
    with pytest.raises(Overloaded):
        batcher.submit(3, priority="batch")
    high = batcher.submit(4, priority="interactive")
    gate.release.set()
    await asyncio.gather(first, high, *low)
    assert gate.batches == [[0], [4], [1], [2]]


async def test_cancelled_requests_are_not_computed() -> None:
    gate = Gate()
    batcher: Batcher[int, int] = Batcher(gate, max_delay_ms=0)
    first = batcher.submit(1)
    await asyncio.to_thread(gate.started.wait, 5)
    gone, kept = batcher.submit(2), batcher.submit(3)
    gone.cancel()
    gate.release.set()
    await asyncio.gather(first, kept)
    assert gate.batches == [[1], [3]]


async def test_inline_mode_batches_what_arrived_in_one_loop_iteration() -> None:
    calls: list[list[int]] = []

    def run(payloads: Sequence[int]) -> list[int | BaseException]:
        calls.append(list(payloads))
        return [p * 10 for p in payloads]

    batcher: Batcher[int, int] = Batcher(run, inline=True, max_delay_ms=0)
    futures = [batcher.submit(i) for i in range(1, 4)]
    assert await asyncio.gather(*futures) == [10, 20, 30]
    assert calls == [[1, 2, 3]]
    assert await batcher.submit(4) == 40
    assert calls[-1] == [4]


async def test_lone_small_request_predicts_on_the_loop_without_a_thread_hand_off() -> None:
    threads: list[str] = []

    def run(payloads: Sequence[int]) -> list[int | BaseException]:
        threads.append(threading.current_thread().name)
        return [p * 10 for p in payloads]

    here = threading.current_thread().name
    batcher: Batcher[int, int] = Batcher(
        run,
        lone_inline_rows=4,
        max_delay_ms=0,
        timer=_ticks(0.0001),  # a fast model
    )
    assert await batcher.submit(1) == 10  # the first one is timed in the worker
    assert threads[0] != here
    assert await batcher.submit(2) == 20
    assert await batcher.submit(3, rows=4) == 30
    assert threads[1:] == [here, here]
    assert await batcher.submit(4, rows=5) == 40  # over the row limit: the worker
    assert threads[-1] != here


async def test_a_slow_model_never_predicts_on_the_loop() -> None:
    threads: list[str] = []

    def run(payloads: Sequence[int]) -> list[int | BaseException]:
        threads.append(threading.current_thread().name)
        return [p * 10 for p in payloads]

    batcher: Batcher[int, int] = Batcher(
        run,
        lone_inline_rows=4,
        max_delay_ms=0,
        timer=_ticks(0.01),  # a slow model
    )
    for i in range(3):
        assert await batcher.submit(i) == i * 10
    assert threading.current_thread().name not in threads


async def test_lone_fast_path_still_batches_requests_that_arrive_together() -> None:
    calls: list[tuple[list[int], str]] = []

    def run(payloads: Sequence[int]) -> list[int | BaseException]:
        calls.append((list(payloads), threading.current_thread().name))
        return [p * 10 for p in payloads]

    batcher: Batcher[int, int] = Batcher(run, lone_inline_rows=4, max_delay_ms=0)
    assert await batcher.submit(0) == 0  # times the model: cheap enough for the loop
    futures = [batcher.submit(i) for i in range(1, 6)]
    assert await asyncio.gather(*futures) == [10, 20, 30, 40, 50]
    assert [batch for batch, _ in calls] == [[0], [1, 2, 3, 4, 5]]
    assert calls[1][1] != threading.current_thread().name  # a burst goes to the worker


def _ticks(step: float) -> Callable[[], float]:
    """A timer that advances ``step`` seconds per reading: every predict call takes ``step``."""
    now = [0.0]

    def read() -> float:
        now[0] += step
        return now[0]

    return read

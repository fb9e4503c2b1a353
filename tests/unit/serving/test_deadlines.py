"""Request deadlines under one shared timer: expiry, in-time finishes, foreign cancels."""

from __future__ import annotations

import asyncio

import pytest

from mloop.serving._deadlines import Deadlines

pytestmark = pytest.mark.anyio


async def guarded(deadlines: Deadlines, timeout_s: float, work_s: float) -> str:
    """What a route does: run ``work_s`` of work within ``timeout_s``."""
    try:
        with deadlines.within(timeout_s):
            await asyncio.sleep(work_s)
        return "done"
    except TimeoutError:
        return "timed out"


async def test_each_request_times_out_on_its_own_deadline() -> None:
    deadlines = Deadlines()
    results = await asyncio.gather(
        guarded(deadlines, 0.05, 1.0),
        guarded(deadlines, 1.0, 0.1),
        guarded(deadlines, 0.02, 1.0),
        guarded(deadlines, 5.0, 0.01),
    )
    assert results == ["timed out", "done", "timed out", "done"]
    assert len(deadlines) == 0


async def test_a_later_request_with_a_shorter_deadline_still_times_out_in_time() -> None:
    deadlines = Deadlines()
    slow = asyncio.ensure_future(guarded(deadlines, 10.0, 0.3))
    await asyncio.sleep(0)
    started = asyncio.get_running_loop().time()
    assert await guarded(deadlines, 0.03, 1.0) == "timed out"
    assert asyncio.get_running_loop().time() - started < 0.25
    assert await slow == "done"


async def test_a_cancel_from_elsewhere_is_not_taken_for_a_timeout() -> None:
    deadlines = Deadlines()
    task = asyncio.ensure_future(guarded(deadlines, 5.0, 5.0))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_finished_requests_do_not_pile_up() -> None:
    deadlines = Deadlines()
    for _ in range(1000):
        assert await guarded(deadlines, 10.0, 0) == "done"
    assert len(deadlines._heap) <= 1

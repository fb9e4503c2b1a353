"""Columns counted in parallel threads (part of mloop's own drift engine).

The counting kernels spend most of their time in numpy ufuncs and Arrow compute
functions, which release the GIL, so threads over columns use every core without
copying a frame into worker processes. Small inputs run inline: a thread hand-off
costs more than counting a few thousand values.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["map_columns"]

T = TypeVar("T")
R = TypeVar("R")

# Below this many values in all, counting inline is cheaper than handing work to threads.
_PARALLEL_VALUES = 200_000
_MAX_THREADS = 8
_PREFIX = "mloop-drift"

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _threads() -> int:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    return max(1, min(usable, _MAX_THREADS))


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_threads(), thread_name_prefix=_PREFIX)
        return _pool


def map_columns(fn: Callable[[T], R], items: Sequence[T], values: int) -> list[R]:
    """``[fn(item) for item in items]``, in threads when ``values`` (rows x columns) is large.

    Results keep the order of ``items``; the first exception raised is re-raised.
    """
    inline = (
        len(items) < 2
        or values < _PARALLEL_VALUES
        or _threads() < 2
        # a task that maps again must not wait on the pool it occupies
        or threading.current_thread().name.startswith(_PREFIX)
    )
    if inline:
        return [fn(item) for item in items]
    return list(_executor().map(fn, items))

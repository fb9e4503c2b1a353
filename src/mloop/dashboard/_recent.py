"""Recent results of expensive reads, shared by every open page (single flight, short TTL).

A Monitor page over a week of windows costs the monitor seconds (it decodes every
logged row), and each open page polls it. The log changes only when the spool is
compacted, so a result younger than ``ttl_s`` is as fresh as a new one; and while one
request computes a key, others for the same key wait for that result instead of
starting their own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from mloop._clock import Clock, SystemClock

__all__ = ["Recent"]

T = TypeVar("T")


class Recent:
    """Results by key for ``ttl_s`` seconds of ``clock``; one computation per key at a time."""

    def __init__(self, ttl_s: float = 10.0, *, clock: Clock | None = None, size: int = 256) -> None:
        self.ttl_s = ttl_s
        self.clock = clock or SystemClock()
        self.size = size
        self._values: dict[Hashable, tuple[float, Any]] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The value of ``key`` if computed within ``ttl_s``, else ``compute()`` (once)."""
        if self.ttl_s <= 0:
            return compute()
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            found = self._values.get(key)
            if found is not None and self.clock.now() - found[0] < self.ttl_s:
                value: T = found[1]
                return value
            value = compute()  # an exception is not kept: the next reader tries again
            with self._guard:
                if len(self._values) >= self.size:
                    self._values.pop(next(iter(self._values)))
                self._values[key] = (self.clock.now(), value)
            return value

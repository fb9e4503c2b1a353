"""Latency histograms that add up: fixed log-spaced buckets shared by every process.

Each bucket is 25% wider than the one below, from 0.05 ms, so the counts of any
processes and seconds can be summed bucket by bucket and p50/p99 read from the sum
come out within a bucket's width (about ±12%) of the exact quantile.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

__all__ = ["BUCKETS", "bucket_of", "decode", "encode", "percentile"]

_LOWEST_MS = 0.05
_GROWTH = 1.25
BUCKETS = 96  # the top one starts near 0.05 * 1.25**94 ms, about an hour


def bucket_of(latency_ms: float) -> int:
    """The bucket that counts one latency (bucket 0: at most 0.05 ms)."""
    if not latency_ms > _LOWEST_MS:  # also NaN
        return 0
    return min(BUCKETS - 1, 1 + int(math.log(latency_ms / _LOWEST_MS, _GROWTH)))


def _upper_ms(bucket: int) -> float:
    return _LOWEST_MS * _GROWTH**bucket


def percentile(histogram: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a histogram: its bucket's geometric middle."""
    total = sum(histogram)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(histogram):
        seen += count
        if seen >= rank and count:
            if i == 0:
                return _LOWEST_MS
            return math.sqrt(_upper_ms(i - 1) * _upper_ms(i))
    return _upper_ms(len(histogram) - 1)


def encode(histogram: Sequence[int]) -> str:
    """JSON of the non-empty buckets only (most of the 96 are empty in any second)."""
    return json.dumps({str(i): c for i, c in enumerate(histogram) if c}, separators=(",", ":"))


def decode(text: str) -> list[int]:
    """The dense histogram of ``encode``'s output."""
    histogram = [0] * BUCKETS
    data = json.loads(text)
    # Rows written before the sparse form held every bucket as a list.
    pairs = enumerate(data) if isinstance(data, list) else data.items()
    for i, count in pairs:
        histogram[int(i)] += int(count)
    return histogram

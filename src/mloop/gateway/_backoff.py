"""Retry delays: exponential backoff with full jitter that honours the provider's Retry-After."""

from __future__ import annotations

import random

__all__ = ["backoff_delay"]


def backoff_delay(
    attempt: int,
    *,
    base_s: float = 0.25,
    cap_s: float = 20.0,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds before retry number ``attempt`` (1-based): uniform in [0, min(cap, base·2^k)].

    Full jitter spreads a herd of failed calls over the whole interval; a
    ``Retry-After`` from the provider is a floor, never shortened by the jitter.
    """
    ceiling = min(cap_s, base_s * (2 ** max(0, attempt - 1)))
    delay = (rng or random).uniform(0.0, ceiling)
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return delay

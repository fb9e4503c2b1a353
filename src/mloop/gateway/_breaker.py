"""A circuit breaker per deployment: stop sending to a failing deployment, probe it later.

closed --(N consecutive failures)--> open --(cooldown)--> half-open (one probe)
half-open --(probe succeeds)--> closed; --(probe fails)--> open, cooldown doubled (capped).
Rate limiting (429) is quota, not failure: it never trips the breaker.
"""

from __future__ import annotations

__all__ = ["CircuitBreaker"]


class CircuitBreaker:
    """Failure-counting breaker with exponential cooldown; pure, time passed in."""

    def __init__(
        self, failure_threshold: int = 3, cooldown_s: float = 2.0, max_cooldown_s: float = 60.0
    ) -> None:
        self.failure_threshold = failure_threshold
        self.base_cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self.failures = 0
        self.cooldown_s = cooldown_s
        self.opened_at: float | None = None
        self.probing = False

    def state(self, now: float) -> str:
        """'closed', 'open' or 'half_open'."""
        if self.opened_at is None:
            return "closed"
        return "open" if now < self.opened_at + self.cooldown_s else "half_open"

    def can_try(self, now: float) -> bool:
        """True when a call may be sent now."""
        state = self.state(now)
        return state == "closed" or (state == "half_open" and not self.probing)

    def retry_at(self, now: float) -> float:
        """When the next call could be let through."""
        if self.opened_at is None:
            return now
        return max(now, self.opened_at + self.cooldown_s)

    def on_dispatch(self, now: float) -> None:
        """A call was sent; in half-open it is the one probe."""
        if self.state(now) == "half_open":
            self.probing = True

    def on_success(self) -> None:
        """A call succeeded: close."""
        self.failures = 0
        self.opened_at = None
        self.probing = False
        self.cooldown_s = self.base_cooldown_s

    def on_failure(self, now: float) -> None:
        """A call failed (5xx, timeout, broken connection)."""
        self.failures += 1
        if self.probing or self.opened_at is not None:
            self.cooldown_s = min(self.max_cooldown_s, self.cooldown_s * 2)
            self.opened_at = now
        elif self.failures >= self.failure_threshold:
            self.opened_at = now
        self.probing = False

    def on_abandoned(self) -> None:
        """A probe ended without a verdict (e.g. rate limited): allow another."""
        self.probing = False

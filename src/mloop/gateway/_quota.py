"""A local copy of one deployment's provider quota: request and token buckets, in-flight calls.

This is mloop's own admission algorithm. The buckets refill continuously at the
configured rate (limit per window) up to the burst the provider allows, and are
charged *before* a call. Each response's ``x-ratelimit-*`` headers re-anchor the
copy: the provider's ``remaining`` (aged by the refill since) minus what was sent
after that call caps the level, and ``remaining + reset * rate`` reveals a burst
capacity smaller than the configured one. A 429 means the copy drifted: it is
emptied and the deployment is blocked for ``retry-after``.

Headers never raise what the operator configured: providers do not agree on what
``x-ratelimit-limit-*`` counts (OpenAI reports per minute, others per day), and a
per-day limit read per minute would let a burst through that the provider then
refuses. A header limit below the configured rate still lowers it (the operator
may have asked for more than the account has).
Pure: every method takes ``now``; nothing sleeps or does I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "MAX_RETRY_AFTER_S",
    "REQUEST_RESERVE",
    "TOKEN_RESERVE",
    "Observation",
    "Quota",
    "QuotaUse",
    "TokenBucket",
]

# Spare quota kept in the bucket (one request when the burst is 10 or more, 2% of
# the tokens). At the rate limit
# it costs no throughput, only that much burst, and it absorbs calls that reach the
# provider in another order than they were admitted (several replicas, jittery links).
REQUEST_RESERVE = 1.0
TOKEN_RESERVE = 0.02
# The longest a provider's Retry-After may block a deployment: a header asking for
# days must not take a deployment out for the life of the process.
MAX_RETRY_AFTER_S = 300.0
# Two measurements of a provider's rate agree when within this factor of each other.
_AGREE = 1.5


@dataclass
class TokenBucket:
    """A continuously refilling bucket; ``capacity == 0`` means unlimited."""

    capacity: float
    rate: float
    level: float
    updated: float
    configured_rate: float = 0.0  # the operator's rate; headers never go above it

    @classmethod
    def full(cls, capacity: float, rate: float, now: float) -> TokenBucket:
        """A bucket that starts full."""
        return cls(capacity=capacity, rate=rate, level=capacity, updated=now)

    def refill(self, now: float) -> None:
        """Add what the rate gave since the last update."""
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
            self.updated = now

    def wait_for(self, cost: float, now: float, reserve: float = 0.0) -> float:
        """Seconds until ``cost`` fits, keeping ``reserve`` spare (0: now).

        A cost above capacity fits a full bucket. The reserve absorbs calls that
        reach the provider in a different order than they were admitted.
        """
        if self.capacity <= 0:
            return 0.0
        self.refill(now)
        need = min(cost + reserve, self.capacity)
        if self.level >= need:
            return 0.0
        return (need - self.level) / self.rate if self.rate > 0 else float("inf")

    def take(self, cost: float, now: float) -> None:
        """Charge ``cost`` (may go negative: a debt that refill pays back)."""
        if self.capacity > 0:
            self.refill(now)
            self.level -= cost


@dataclass(frozen=True)
class Observation:
    """What one provider response said about the quota (``None``: not reported)."""

    remaining_requests: float | None = None
    remaining_tokens: float | None = None
    limit_requests: float | None = None
    limit_tokens: float | None = None
    reset_requests_s: float | None = None
    reset_tokens_s: float | None = None
    retry_after_s: float | None = None
    rate_limited: bool = False
    used_tokens: int | None = None
    send_delay_s: float = 0.0  # time the call waited for a connection after admission


@dataclass(frozen=True)
class QuotaUse:
    """How much of one deployment's quota is left now, against what it allows.

    ``*_remaining`` may be negative (calls admitted on credit, paid back by the
    refill); a capacity of 0 means that limit is not configured.
    """

    requests_remaining: float
    request_capacity: float
    tokens_remaining: float
    token_capacity: float
    inflight: int
    max_concurrency: int
    blocked_for_s: float

    def to_dict(self) -> dict[str, float | int]:
        """Plain JSON numbers, rounded for reading."""
        return {
            "requests_remaining": round(self.requests_remaining, 2),
            "request_capacity": round(self.request_capacity, 2),
            "tokens_remaining": round(self.tokens_remaining, 2),
            "token_capacity": round(self.token_capacity, 2),
            "inflight": self.inflight,
            "max_concurrency": self.max_concurrency,
            "blocked_for_s": round(self.blocked_for_s, 3),
        }


class Quota:
    """One deployment's quota as this gateway believes it is."""

    def __init__(
        self,
        *,
        rpm: float,
        tpm: float,
        max_concurrency: int,
        window_s: float,
        request_capacity: float,
        token_capacity: float,
        now: float,
    ) -> None:
        self.window_s = window_s
        self.max_concurrency = max_concurrency
        self.requests = TokenBucket.full(request_capacity, rpm / window_s, now)
        self.tokens = TokenBucket.full(token_capacity, tpm / window_s, now)
        self.header_request_rate = 0.0  # the last header limit per the configured window
        # What the operator configured (0: nothing): headers never raise these.
        self.configured = (request_capacity if rpm > 0 else 0.0, token_capacity if tpm > 0 else 0.0)
        self.requests.configured_rate = rpm / window_s
        self.tokens.configured_rate = tpm / window_s
        self.inflight = 0
        self.blocked_until = 0.0
        # Calls the provider has (probably) charged, counted in send order, so a
        # response's "remaining" can be aged by what was sent after it.
        self.seq = 0
        self.anchored_seq = 0
        self.charged_requests = 0
        self.charged_tokens = 0
        # When each unanswered call was sent: its response's "remaining" is that old.
        self.sent_at: dict[int, float] = {}

    def wait(self, tokens: int, now: float) -> tuple[float, str]:
        """Seconds until a call of ``tokens`` may go, and what it waits on ('' if none)."""
        if now < self.blocked_until:
            return self.blocked_until - now, "retry_after"
        if self.max_concurrency and self.inflight >= self.max_concurrency:
            return float("inf"), "concurrency"
        reserve = REQUEST_RESERVE if self.requests.capacity >= 10 else 0.0
        w_req = self.requests.wait_for(1, now, reserve)
        w_tok = self.tokens.wait_for(tokens, now, self.tokens.capacity * TOKEN_RESERVE)
        if w_req == 0 and w_tok == 0:
            return 0.0, ""
        return (w_req, "requests") if w_req >= w_tok else (w_tok, "tokens")

    def take(self, tokens: int, now: float) -> tuple[int, int, int]:
        """Charge one call; returns its mark (sequence, charged calls and tokens before it)."""
        self.requests.take(1, now)
        self.tokens.take(tokens, now)
        self.inflight += 1
        self.seq += 1
        mark = (self.seq, self.charged_requests, self.charged_tokens)
        self.charged_requests += 1
        self.charged_tokens += tokens
        self.sent_at[self.seq] = now
        return mark

    def usage(self, now: float) -> QuotaUse:
        """What is left of the quota at ``now`` (refilled first)."""
        self.requests.refill(now)
        self.tokens.refill(now)
        return QuotaUse(
            requests_remaining=self.requests.level,
            request_capacity=self.requests.capacity,
            tokens_remaining=self.tokens.level,
            token_capacity=self.tokens.capacity,
            inflight=self.inflight,
            max_concurrency=self.max_concurrency,
            blocked_for_s=max(0.0, self.blocked_until - now),
        )

    def release(self) -> None:
        """A call finished; its concurrency slot is free."""
        self.inflight = max(0, self.inflight - 1)

    def observe(
        self, obs: Observation, mark: tuple[int, int, int], charged_tokens: int, now: float
    ) -> None:
        """Re-anchor the local copy on what the provider reported for one call."""
        seq, before_req, before_tok = mark
        # The provider measured "remaining" when it admitted the call; it has refilled since.
        age = max(0.0, now - self.sent_at.pop(seq, now) - obs.send_delay_s)
        if obs.rate_limited:
            # Rejected calls cost nothing at the provider: stop counting this one.
            self.charged_requests -= 1
            self.charged_tokens -= charged_tokens
            self.tokens.level = min(self.tokens.capacity, self.tokens.level + charged_tokens)
        own_req, own_tok = (0, 0) if obs.rate_limited else (1, charged_tokens)
        if seq > self.anchored_seq:
            # Only a response newer than the last one used may move the copy.
            self.anchored_seq = seq
            after_req = self.charged_requests - before_req - own_req
            after_tok = self.charged_tokens - before_tok - own_tok
            _anchor(
                self.requests,
                self.configured[0],
                obs.limit_requests,
                obs.remaining_requests,
                obs.reset_requests_s,
                after_req,
                age,
                self.window_s,
                now,
            )
            _anchor(
                self.tokens,
                self.configured[1],
                obs.limit_tokens,
                obs.remaining_tokens,
                obs.reset_tokens_s,
                after_tok,
                age,
                self.window_s,
                now,
            )
        if obs.remaining_tokens is None and obs.used_tokens is not None:
            # No header: the provider charged what it used, not what we estimated.
            self.tokens.refill(now)
            self.tokens.level = min(
                self.tokens.capacity, self.tokens.level + charged_tokens - obs.used_tokens
            )
        if obs.limit_requests is not None and math.isfinite(obs.limit_requests):
            self.header_request_rate = max(0.0, obs.limit_requests) / self.window_s
        if obs.rate_limited:
            self.requests.refill(now)
            self.requests.level = min(self.requests.level, 0.0)
            wait = obs.retry_after_s if obs.retry_after_s is not None else 1.0
            if not 0.0 <= wait <= MAX_RETRY_AFTER_S:  # NaN, negative or absurd: bounded
                wait = MAX_RETRY_AFTER_S if wait > MAX_RETRY_AFTER_S else 1.0
            self.blocked_until = max(self.blocked_until, now + wait)
            if obs.retry_after_s is not None and 0 < wait < self.window_s:
                self._confirm_request_rate(1.0 / wait)

    def _confirm_request_rate(self, measured: float) -> None:
        """Lower the request rate to the header's when a 429 confirms that window.

        A header's ``limit`` alone does not say its window (per minute, per day, per
        six seconds), so it never sets a configured rate. But a 429 whose Retry-After
        for one request matches the rate the header implies per the configured window
        is the provider confirming it: the operator asked for more than the account
        has, and the local copy follows the provider.
        """
        told = self.header_request_rate
        if told <= 0 or not told < self.requests.rate:
            return
        if told / _AGREE <= measured <= told * _AGREE:
            self.requests.rate = told
            self.requests.capacity = min(self.requests.capacity, max(1.0, told * self.window_s))


def _anchor(
    bucket: TokenBucket,
    configured: float,
    limit: float | None,
    remaining: float | None,
    reset_s: float | None,
    sent_after: float,
    age: float,
    window_s: float,
    now: float,
) -> None:
    if configured <= 0 and limit is not None and math.isfinite(limit) and limit > 0:
        # Nothing configured: the header's limit, read per the configured window.
        bucket.rate = limit / window_s
        if bucket.capacity <= 0:
            bucket.capacity = limit
            bucket.level = limit
            bucket.updated = now
    if remaining is None or not math.isfinite(remaining) or bucket.capacity <= 0:
        return
    remaining = max(0.0, remaining)
    if reset_s is not None and math.isfinite(reset_s) and bucket.rate > 0:
        learned = remaining + max(0.0, reset_s) * bucket.rate
        ceiling = min(configured or float("inf"), limit or float("inf"))
        bucket.capacity = max(1.0, min(ceiling, learned))
    bucket.refill(now)
    provider_now = min(bucket.capacity, remaining + age * bucket.rate)
    # Only ever lower the copy: calls admitted earlier may reach the provider after
    # this one (many connections), so a high "remaining" can be stale; a low one is
    # drift (another client, a wrong estimate) and must be believed at once.
    bucket.level = min(bucket.level, provider_now - max(0.0, sent_after))

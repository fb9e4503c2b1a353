"""The local quota copy: buckets, re-anchoring on provider headers, 429 as drift."""

from __future__ import annotations

import pytest

from mloop.gateway._headers import parse_duration, parse_observation, parse_retry_after
from mloop.gateway._quota import Observation, Quota, TokenBucket


def quota(**kw: float) -> Quota:
    args = dict(
        rpm=60,
        tpm=6000,
        max_concurrency=2,
        window_s=60.0,
        request_capacity=60,
        token_capacity=6000,
        now=0.0,
    )
    args.update(kw)
    return Quota(**args)  # type: ignore[arg-type]


def test_bucket_refills_at_rate_and_caps_at_capacity() -> None:
    b = TokenBucket.full(10, 1.0, now=0.0)
    b.take(10, 0.0)
    assert b.wait_for(1, 0.0) == pytest.approx(1.0)
    assert b.wait_for(1, 1.0) == 0
    b.refill(100.0)
    assert b.level == 10


def test_oversized_cost_fits_a_full_bucket_then_leaves_debt() -> None:
    b = TokenBucket.full(100, 10.0, now=0.0)
    assert b.wait_for(500, 0.0) == 0
    b.take(500, 0.0)
    assert b.wait_for(1, 0.0) == pytest.approx(40.1)


def test_waits_on_concurrency_requests_and_tokens() -> None:
    q = quota(rpm=60, request_capacity=2)
    q.take(10, 0.0)
    q.take(10, 0.0)
    assert q.wait(10, 0.0)[1] == "concurrency"
    q.release()
    q.release()
    wait, reason = q.wait(10, 0.0)
    assert reason == "requests" and wait == pytest.approx(1.0)
    q2 = quota(tpm=600, token_capacity=600)
    q2.take(590, 0.0)
    q2.release()
    # 20 tokens plus the 2% reserve (12) against 10 left, at 10 tokens per second.
    assert q2.wait(20, 0.0) == (pytest.approx(2.2), "tokens")


def test_headers_reanchor_level_and_learn_burst_capacity() -> None:
    q = quota(rpm=600, request_capacity=600)
    mark = q.take(10, 0.0)
    q.take(10, 0.0)  # sent after the observed call
    # Provider: limit 600/min, 9 left, full again in 9.1 s -> burst capacity 9 + 9.1*10 = 100.
    obs = Observation(limit_requests=600, remaining_requests=9, reset_requests_s=9.1)
    q.observe(obs, mark, 10, 0.0)
    assert q.requests.capacity == pytest.approx(100.0)
    assert q.requests.level == pytest.approx(8.0)


def test_rate_limited_answer_empties_bucket_and_blocks_for_retry_after() -> None:
    q = quota()
    mark = q.take(10, 0.0)
    q.release()
    q.observe(Observation(rate_limited=True, retry_after_s=2.5), mark, 10, 0.0)
    assert q.wait(1, 1.0) == (pytest.approx(1.5), "retry_after")
    assert q.wait(1, 2.6)[1] in ("", "requests")


def test_usage_corrects_tokens_when_no_header() -> None:
    q = quota(tpm=1000, token_capacity=1000)
    mark = q.take(300, 0.0)
    q.observe(Observation(used_tokens=100), mark, 300, 0.0)
    assert q.tokens.level == pytest.approx(900)


def test_parse_openai_and_anthropic_headers() -> None:
    assert parse_duration("6m0s") == 360
    assert parse_duration("20ms") == pytest.approx(0.02)
    assert parse_duration("1.5s") == 1.5
    assert parse_duration("soon") is None
    assert parse_retry_after({"retry-after-ms": "250"}, 0) == 0.25
    assert parse_retry_after({"retry-after": "3"}, 0) == 3
    obs = parse_observation(
        {
            "x-ratelimit-remaining-requests": "5",
            "x-ratelimit-limit-tokens": "1000",
            "x-ratelimit-reset-tokens": "1s",
        },
        status=200,
        now_wall=0,
    )
    assert (obs.remaining_requests, obs.limit_tokens, obs.reset_tokens_s) == (5, 1000, 1)
    anth = parse_observation(
        {
            "anthropic-ratelimit-requests-remaining": "7",
            "anthropic-ratelimit-requests-reset": "1970-01-01T00:00:10Z",
        },
        status=429,
        now_wall=4.0,
    )
    assert anth.remaining_requests == 7 and anth.reset_requests_s == 6 and anth.rate_limited


# --- providers whose headers describe another window than the configured one ---------


def _observed(q: Quota, obs: Observation, now: float = 0.0) -> None:
    mark = q.take(10, now)
    q.release()
    q.observe(obs, mark, 10, now)


def test_a_per_day_limit_header_keeps_the_configured_rate_and_burst() -> None:
    q = quota(rpm=300, request_capacity=300)  # 5 requests per second, burst 300
    daily = Observation(limit_requests=432_000, remaining_requests=431_000, reset_requests_s=200)
    _observed(q, daily)
    assert q.requests.rate == pytest.approx(5.0)
    assert q.requests.capacity == pytest.approx(300)


def test_openai_duration_and_anthropic_instant_resets_parse_the_same() -> None:
    now_wall = 1_800_000_000.0
    openai = parse_observation(
        {"x-ratelimit-remaining-requests": "9", "x-ratelimit-reset-requests": "6m0s"},
        status=200,
        now_wall=now_wall,
    )
    anthropic = parse_observation(
        {
            "anthropic-ratelimit-requests-remaining": "9",
            "anthropic-ratelimit-requests-reset": "2027-01-15T08:05:00Z",
        },
        status=200,
        now_wall=1_799_999_640.0 + (1_800_000_000.0 - 1_799_999_640.0),
    )
    assert openai.reset_requests_s == pytest.approx(360)
    assert anthropic.remaining_requests == 9 and anthropic.reset_requests_s is not None


@pytest.mark.parametrize(
    "obs",
    [
        Observation(limit_requests=float("nan"), remaining_requests=float("nan")),
        Observation(remaining_requests=-5, reset_requests_s=-1),
        Observation(limit_requests=1e300, remaining_requests=1e300, reset_requests_s=1e300),
        Observation(),
    ],
)
def test_nonsense_headers_never_raise_the_rate_or_burst(obs: Observation) -> None:
    q = quota(rpm=300, request_capacity=300)
    _observed(q, obs)
    assert q.requests.rate == pytest.approx(5.0)
    assert 1 <= q.requests.capacity <= 300
    q.requests.refill(100.0)
    assert q.wait(10, 100.0) == (0.0, "")  # never blocked beyond a refill


@pytest.mark.parametrize("retry_after", [1e12, float("nan"), -3.0, float("inf")])
def test_a_retry_after_beyond_reason_blocks_for_a_bounded_time(retry_after: float) -> None:
    from mloop.gateway._quota import MAX_RETRY_AFTER_S

    q = quota()
    _observed(q, Observation(rate_limited=True, retry_after_s=retry_after))
    wait, reason = q.wait(1, 0.0)
    assert reason == "retry_after" and wait <= MAX_RETRY_AFTER_S


def test_an_unconfigured_limit_is_learned_from_the_header() -> None:
    q = quota(rpm=0, request_capacity=0)
    _observed(q, Observation(limit_requests=120, remaining_requests=100, reset_requests_s=10))
    assert q.requests.rate == pytest.approx(2.0)  # 120 per the configured 60 s window
    assert q.requests.capacity == pytest.approx(120)


def test_usage_says_what_is_left_in_flight_and_how_long_blocked() -> None:
    q = Quota(
        rpm=60,
        tpm=6000,
        max_concurrency=4,
        window_s=60.0,
        request_capacity=60,
        token_capacity=6000,
        now=0.0,
    )
    mark = q.take(100, 0.0)
    q.take(200, 0.0)
    use = q.usage(0.0)
    assert (use.requests_remaining, use.tokens_remaining, use.inflight) == (58, 5700, 2)
    assert (use.request_capacity, use.token_capacity, use.max_concurrency) == (60, 6000, 4)
    assert use.blocked_for_s == 0
    assert q.usage(1.0).requests_remaining == 59  # one request refilled per second
    q.observe(Observation(rate_limited=True, retry_after_s=5.0), mark, 100, 1.0)
    blocked = q.usage(2.0)
    assert blocked.blocked_for_s == 4.0 and blocked.requests_remaining <= 1.0
    assert blocked.to_dict()["blocked_for_s"] == 4.0

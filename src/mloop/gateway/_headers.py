"""Read quota hints from provider response headers (OpenAI and Anthropic spellings)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime

from mloop.gateway._quota import Observation

__all__ = ["parse_duration", "parse_observation", "parse_retry_after"]

_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(text: str | None) -> float | None:
    """Seconds in an OpenAI reset value such as ``1s``, ``6m0s``, ``20ms`` or ``0.5``."""
    if text is None:
        return None
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT[u] for n, u in parts)


def _reset_at(text: str | None, now_wall: float) -> float | None:
    """Seconds until an RFC 3339 instant (Anthropic's reset headers)."""
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return parse_duration(text)
    return max(0.0, at.timestamp() - now_wall)


def parse_retry_after(headers: Mapping[str, str], now_wall: float) -> float | None:
    """Seconds the provider asked us to wait (``retry-after-ms`` or ``retry-after``)."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now_wall)
    except (TypeError, ValueError):
        return None


def _num(headers: Mapping[str, str], *names: str) -> float | None:
    for name in names:
        value = headers.get(name)
        if value is not None:
            try:
                return float(value)
            except ValueError:
                continue
    return None


def parse_observation(
    headers: Mapping[str, str],
    *,
    status: int,
    now_wall: float,
    used_tokens: int | None = None,
) -> Observation:
    """The quota facts in one response (lower-cased header names expected)."""
    reset_req = parse_duration(headers.get("x-ratelimit-reset-requests"))
    if reset_req is None:
        reset_req = _reset_at(headers.get("anthropic-ratelimit-requests-reset"), now_wall)
    reset_tok = parse_duration(headers.get("x-ratelimit-reset-tokens"))
    if reset_tok is None:
        reset_tok = _reset_at(headers.get("anthropic-ratelimit-tokens-reset"), now_wall)
    return Observation(
        remaining_requests=_num(
            headers, "x-ratelimit-remaining-requests", "anthropic-ratelimit-requests-remaining"
        ),
        remaining_tokens=_num(
            headers, "x-ratelimit-remaining-tokens", "anthropic-ratelimit-tokens-remaining"
        ),
        limit_requests=_num(
            headers, "x-ratelimit-limit-requests", "anthropic-ratelimit-requests-limit"
        ),
        limit_tokens=_num(headers, "x-ratelimit-limit-tokens", "anthropic-ratelimit-tokens-limit"),
        reset_requests_s=reset_req,
        reset_tokens_s=reset_tok,
        retry_after_s=parse_retry_after(headers, now_wall),
        rate_limited=status == 429,
        used_tokens=used_tokens,
    )

"""Before any call: check a request, size it in tokens per deployment, bound its cost.

Pure functions of the config, the route and the request body; the gateway
calls them once per request, before it queues.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mloop.errors import InvalidInput
from mloop.gateway._budget import prompt_token_bound
from mloop.gateway._cache import cacheable
from mloop.gateway._config import GatewayConfig, Route
from mloop.gateway._scheduler import PRIORITIES, Candidate, Priority
from mloop.gateway._tokens import estimate_prompt_tokens

__all__ = [
    "check_messages",
    "completion_tokens",
    "learned_token_ratio",
    "max_cost",
    "plan_candidates",
    "priority_of",
    "wants_cache",
]


def priority_of(value: str) -> Priority:
    """``value`` as a scheduler priority, or a user error naming the allowed ones."""
    if value not in PRIORITIES:
        raise InvalidInput(
            f"Priority {value!r} is not known; use one of {list(PRIORITIES)}.", param="priority"
        )
    return value  # type: ignore[return-value]


def wants_cache(body: Mapping[str, Any]) -> bool:
    """True when the request may be answered from (and stored in) the response cache."""
    flag = body.get("cache")
    if flag is not None and not isinstance(flag, bool):
        raise InvalidInput(f"cache={str(flag)[:40]!r} must be true or false.", param="cache")
    return cacheable(body)


def completion_tokens(config: GatewayConfig, body: Mapping[str, Any]) -> int:
    """The completion tokens a request may use: its ``max_tokens`` or the configured default."""
    completion = body.get("max_tokens") or body.get("max_completion_tokens")
    if completion is None:
        return config.default_completion_tokens
    if isinstance(completion, bool) or not isinstance(completion, int) or completion <= 0:
        raise InvalidInput(
            f"max_tokens={str(completion)[:40]!r} must be a whole number of tokens above 0.",
            param="max_tokens",
        )
    limit = config.max_completion_tokens
    if completion > limit:
        # Charged to the quota, it would put the deployment in token debt for as long
        # as the provider takes to refill it (years, for 10**12): refused, not charged.
        raise InvalidInput(
            f"max_tokens={completion} is more than this gateway allows ({limit}); ask "
            "for fewer, or raise [scheduler] max_completion_tokens.",
            param="max_tokens",
        )
    return completion


def check_messages(body: Mapping[str, Any]) -> list[Any]:
    """The request's ``messages``, or a user error saying what a message must look like."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidInput("The request needs a non-empty 'messages' list.", param="messages")
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if (
            not isinstance(message, dict)
            or not isinstance(message.get("role"), str)
            or not (content is None or isinstance(content, str | list))
        ):
            raise InvalidInput(
                f"messages[{i}] must be an object with a 'role' (text) and a 'content' "
                f'(text or a list of parts), e.g. {{"role": "user", "content": "Hi"}}; '
                f"got {str(message)[:60]!r}.",
                param=f"messages[{i}]",
            )
    return messages


def plan_candidates(
    config: GatewayConfig,
    route: Route,
    body: Mapping[str, Any],
    token_ratio: Mapping[str, float],
) -> list[Candidate]:
    """The route's deployments that can take the request, each with its token estimate."""
    messages = check_messages(body)
    out = []
    too_big: list[str] = []
    completion = completion_tokens(config, body)
    for name in route.chain:
        rendered = route.template_for(name).render(messages)
        prompt = estimate_prompt_tokens(rendered) * token_ratio[name]
        tokens = int(prompt + 0.999) + completion
        capacity = config.deployments[name].token_capacity
        if capacity and tokens > capacity:
            too_big.append(f"{name} ({capacity:.0f})")  # it would only ever run in debt
            continue
        out.append(Candidate(name, tokens))
    if not out:
        raise InvalidInput(
            f"The request needs about {tokens} tokens, more than any deployment of route "
            f"{route.name!r} lets through at once: {', '.join(too_big)}. Lower max_tokens "
            "or shorten the messages.",
            param="max_tokens",
        )
    return out


def max_cost(
    config: GatewayConfig, route: Route, body: Mapping[str, Any], completion: int
) -> tuple[float, int]:
    """The most a request can cost (USD) and use (tokens) on any deployment of its route."""
    usd, tokens = 0.0, 0
    for name in route.chain:
        dep = config.deployments[name]
        prompt = prompt_token_bound(route.template_for(name).render(body["messages"]))
        usd = max(usd, dep.cost(prompt, completion))
        tokens = max(tokens, prompt + completion)
    return usd, tokens


def learned_token_ratio(ratio: float, real_prompt: int, estimated_prompt: float) -> float:
    """The ratio of real prompt tokens to our estimate, moved a fifth towards this call's."""
    measured = ratio * real_prompt / max(1.0, estimated_prompt)
    return min(4.0, max(0.25, 0.8 * ratio + 0.2 * measured))

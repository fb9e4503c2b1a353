"""The live A/B's HTTP face: ``POST /v1/feedback`` and ``GET /v1/ab[/{id}]`` (admin)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import Depends, FastAPI, Request

from mloop.auth import ANONYMOUS, Principal
from mloop.errors import InvalidInput
from mloop.gateway._live_ab import LiveAB

__all__ = ["ab_key", "add_ab_routes", "parse_feedback"]

_THUMBS = {"up": 1.0, "down": 0.0}


def ab_key(body: Mapping[str, Any], caller: str | None, request_id: str) -> str:
    """Whose arm a request gets: the OpenAI ``user`` field, else the API key, else the request."""
    user = body.get("user")
    if isinstance(user, str) and user:
        return f"user:{user}"
    return f"key:{caller}" if caller else f"request:{request_id}"


def parse_feedback(body: Mapping[str, Any]) -> tuple[float, str | None, str | None]:
    """``(score, request_id, response_id)`` from a feedback body, or a 422 saying what to send."""
    request_id, response_id = body.get("request_id"), body.get("response_id", body.get("id"))
    for name, value in (("request_id", request_id), ("response_id", response_id)):
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 200):
            raise InvalidInput(f"{name} must be the text of an id (up to 200 characters).")
    if not request_id and not response_id:
        raise InvalidInput(
            "Feedback needs the answer's x-mloop-request-id header as request_id (or the "
            'response\'s id as response_id), e.g. {"request_id": "...", "thumbs": "up"}.',
            param="request_id",
        )
    if "thumbs" in body:
        thumbs = body["thumbs"]
        if not isinstance(thumbs, str) or thumbs not in _THUMBS:
            raise InvalidInput(
                f"thumbs={str(thumbs)[:20]!r} must be 'up' or 'down'.", param="thumbs"
            )
        return _THUMBS[thumbs], request_id, response_id
    score = body.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise InvalidInput(
            f"score={str(score)[:20]!r} must be a number from 0 to 1 (or send thumbs: up/down).",
            param="score",
        )
    if not 0.0 <= score <= 1.0:
        raise InvalidInput(f"score={score} must be between 0 and 1.", param="score")
    return float(score), request_id, response_id


def add_ab_routes(
    app: FastAPI,
    live: LiveAB,
    *,
    gateway_key: Callable[[Request], Awaitable[Principal]],
    admin_key: Callable[[Request], Awaitable[None]],
    read_body: Callable[[Request], Awaitable[dict[str, Any]]],
) -> None:
    """Mount feedback (gateway scope) and the experiments' status (admin scope) on ``app``."""

    @app.post("/v1/feedback")
    async def feedback(request: Request, principal: Principal = Depends(gateway_key)) -> Any:
        score, request_id, response_id = parse_feedback(await read_body(request))
        caller = None if principal is ANONYMOUS else principal.key_id
        return await live.feedback(
            score, request_id=request_id, response_id=response_id, caller=caller
        )

    @app.get("/v1/ab", dependencies=[Depends(admin_key)])
    def experiments() -> dict[str, Any]:
        return {"experiments": [e.to_dict() for e in live.store.experiments()]}

    @app.get("/v1/ab/{experiment_id}", dependencies=[Depends(admin_key)])
    def experiment(experiment_id: str) -> dict[str, Any]:
        return live.status(experiment_id)

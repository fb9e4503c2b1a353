"""The plain records API, the WebSocket feed, health, metrics and model management routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field
from starlette.responses import Response

from mloop.auth import Scope
from mloop.errors import InvalidInput, MloopError, Unavailable
from mloop.serving._flow import ServingContext
from mloop.serving._http import json_response
from mloop.serving._runtime import Job

__all__ = ["predict_records", "records_router"]


class PredictRequest(BaseModel):
    """Body of ``POST /models/{name}/predict`` (documentation only; parsed with orjson)."""

    records: list[dict[str, Any]] = Field(description="One object per row, keyed by column.")


class RowPrediction(BaseModel):
    """One row's answer."""

    label: Any = None
    probabilities: dict[str, float] | None = None
    value: float | None = None


class PredictResponse(BaseModel):
    """Answer of ``POST /models/{name}/predict``."""

    predictions: list[RowPrediction]
    model: str
    version: int
    request_id: str


def parse_records(body: bytes) -> Job:
    """``{"records": [...]}`` (or a bare list of records) as a job."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"The request body is not valid JSON: {exc}.") from exc
    records = data.get("records") if isinstance(data, dict) else data
    if not isinstance(records, list) or not records:
        raise InvalidInput(
            'Send a non-empty list of records: {"records": [{"column": value, ...}, ...]}.'
        )
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise InvalidInput(
                f"Record {i} is a {type(r).__name__}, not an object; send each row as "
                "{column: value}.",
                violations=[{"row": i, "field": None, "message": "not an object"}],
            )
        for field, value in r.items():
            if type(value) in (list, dict) and nesting_exceeds(value, MAX_NESTING):
                raise InvalidInput(
                    f"Record {i} field {field!r} nests lists or objects more than "
                    f"{MAX_NESTING} levels deep; send each value as a number, string, "
                    "boolean or null.",
                    violations=[{"row": i, "field": field, "message": "nested too deep"}],
                )
    return Job("records", records, len(records))


MAX_NESTING = 32  # far beyond any real cell; orjson writes (cache key, log) at most 255


def nesting_exceeds(value: Any, limit: int) -> bool:
    """True when lists/objects in ``value`` nest deeper than ``limit`` (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if type(c) in (list, dict))
    return False


def _body(ctx: ServingContext, name: str, outcome: Any, rid: str) -> bytes:
    return orjson.dumps(
        {
            "predictions": outcome.predictions.to_records(),
            "model": name,
            "version": outcome.version.version,
            "request_id": rid,
        }
    )


_PREDICT_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": PredictRequest.model_json_schema()}},
    }
}


async def predict_records(
    ctx: ServingContext,
    headers: Mapping[str, str],
    state: dict[str, Any],
    read_body: Callable[[], Awaitable[bytes]],
    name: str,
    version: int | None,
) -> Response:
    """``POST /models/{name}[/versions/{version}]/predict`` (the route and the fast path)."""
    await ctx.authorize(headers, Scope.PREDICT, state)
    job = parse_records(await read_body())
    outcome = await ctx.predict(name, job, headers, state, version=version)
    return Response(
        _body(ctx, name, outcome, state["request_id"]),
        media_type="application/json",
        headers={"x-mloop-version": str(outcome.version.version), "x-mloop-arm": outcome.arm},
    )


def records_router(ctx: ServingContext) -> APIRouter:
    """Routes of the records API, WebSocket, health, metrics and management."""
    router = APIRouter()

    @router.post(
        "/models/{name}/predict",
        response_model=PredictResponse,
        openapi_extra=_PREDICT_DOC,
        tags=["predict"],
        summary="Predict records with the version the router chooses",
    )
    async def predict(name: str, request: Request) -> Response:
        return await predict_records(
            ctx, request.headers, request.scope["state"], request.body, name, None
        )

    @router.post(
        "/models/{name}/versions/{version}/predict",
        response_model=PredictResponse,
        openapi_extra=_PREDICT_DOC,
        tags=["predict"],
        summary="Predict records with one explicit version",
    )
    async def predict_version(name: str, version: int, request: Request) -> Response:
        return await predict_records(
            ctx, request.headers, request.scope["state"], request.body, name, version
        )

    @router.websocket("/models/{name}/stream")
    async def stream(websocket: WebSocket, name: str) -> None:
        state = websocket.scope.setdefault("state", {})
        try:
            await ctx.authorize(websocket.headers, Scope.PREDICT, state, websocket.query_params)
            ctx.engine.route(name, None, None)
        except MloopError as exc:
            await websocket.accept()
            await websocket.send_text(orjson.dumps(exc.to_dict(state.get("request_id"))).decode())
            await websocket.close(code=1008 if exc.status_code in (401, 403) else 1003)
            return
        await websocket.accept()
        try:
            while True:
                text = await websocket.receive_text()
                await websocket.send_text((await _stream_one(ctx, name, text, websocket)).decode())
        except WebSocketDisconnect:
            return

    @router.get("/models", tags=["models"], summary="Served models and their active versions")
    async def list_models(request: Request) -> Response:
        await ctx.authorize(request.headers, Scope.PREDICT, request.scope["state"])
        in_use = ctx.engine.router.versions_in_use()
        resident = set(ctx.engine.pool.resident())
        models = [
            {
                "name": name,
                "versions": sorted(versions),
                "loaded": sorted(v for v in versions if (name, v) in resident),
            }
            for name, versions in sorted(in_use.items())
        ]
        return json_response({"models": models})

    @router.get("/healthz", tags=["health"], summary="Liveness (no key needed)")
    async def healthz() -> Response:
        return json_response({"status": "ok"})

    @router.get("/metrics", tags=["health"], summary="Prometheus metrics (scope admin)")
    async def metrics(request: Request) -> Response:
        await ctx.authorize(request.headers, Scope.ADMIN, request.scope["state"])
        ctx.engine.sample_gauges()
        return Response(ctx.engine.metrics.render(), media_type="text/plain; version=0.0.4")

    @router.get("/stats/{name}", tags=["health"], summary="Live per-version stats (scope deploy)")
    async def stats(name: str, request: Request) -> Response:
        await ctx.authorize(request.headers, Scope.DEPLOY, request.scope["state"])
        snap = ctx.engine.stats.snapshot(name)
        return json_response({"model": name, "versions": {str(k): v for k, v in snap.items()}})

    return router


async def _stream_one(ctx: ServingContext, name: str, text: str, websocket: WebSocket) -> bytes:
    state: dict[str, Any] = {"request_id": request_id_for(websocket)}
    message_id = None
    try:
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"The message is not valid JSON: {exc}.") from exc
        if isinstance(data, dict) and "records" not in data:
            data = {"records": [data]}
        if isinstance(data, dict):
            message_id = data.get("id")
        job = parse_records(orjson.dumps(data))
        outcome = await ctx.predict(name, job, websocket.headers, state, api="websocket")
        body: dict[str, Any] = {
            "predictions": outcome.predictions.to_records(),
            "model": name,
            "version": outcome.version.version,
            "request_id": state["request_id"],
        }
    except MloopError as exc:
        body = exc.to_dict(state["request_id"])
    except Exception as exc:  # a bad message must not end the feed
        body = Unavailable(f"Prediction failed: {exc}").to_dict(state["request_id"])
    if message_id is not None:
        body["id"] = message_id
    return orjson.dumps(body)


def request_id_for(websocket: WebSocket) -> str:
    """A fresh id per WebSocket message, prefixed with the connection's id."""
    import os

    return f"{websocket.scope.get('state', {}).get('request_id', '')}-{os.urandom(3).hex()}"

"""HTTP routes of the live monitor, as a FastAPI ``APIRouter`` that serving mounts.

``POST /feedback`` (one label, a list, or ``{"feedback": [...]}``) answers 202 with
counts once the labels are on disk, or 422 storing none of them when any is bad
(``_feedback_door``: every bad item listed by index in ``violations``);
``GET /models/{name}/monitor/status`` and ``/report`` give the same data as
``mloop monitor status`` / ``report``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from mloop.auth import Scope
from mloop.errors import InvalidInput, MloopError
from mloop.monitor._service import Monitor

__all__ = ["feedback_router", "router_for", "serving_routers", "status_router"]


def _error(exc: MloopError, request: Request) -> JSONResponse:
    # The id the serving app assigned (scope state), else the caller's own header.
    state = request.scope.get("state") or {}
    request_id = state.get("request_id") or request.headers.get("x-request-id")
    return JSONResponse(exc.to_dict(request_id), status_code=exc.status_code, headers=exc.headers())


def _items(body: Any) -> list[Any]:
    if isinstance(body, dict) and "feedback" in body:
        body = body["feedback"]
    if isinstance(body, dict):
        return [body]
    if isinstance(body, list):
        return body
    raise InvalidInput(
        'Send one label {"request_id": ..., "label": ...}, a list of them, or {"feedback": [...]}.'
    )


def _deps(dependencies: Sequence[Any]) -> list[Any]:
    return [d if hasattr(d, "dependency") else Depends(d) for d in dependencies]


def router_for(
    monitor: Monitor,
    *,
    feedback_dependencies: Sequence[Any] = (),
    read_dependencies: Sequence[Any] = (),
) -> APIRouter:
    """Every monitor route; pass auth dependencies (e.g. the "feedback" scope) per group."""
    router = APIRouter()
    router.include_router(feedback_router(monitor), dependencies=_deps(feedback_dependencies))
    router.include_router(status_router(monitor), dependencies=_deps(read_dependencies))
    return router


def serving_routers(monitor: Monitor) -> list[tuple[APIRouter, Scope]]:
    """``create_app(routers=...)``: feedback behind the "feedback" scope, reads behind "deploy"."""
    return [(feedback_router(monitor), Scope.FEEDBACK), (status_router(monitor), Scope.DEPLOY)]


def feedback_router(monitor: Monitor) -> APIRouter:
    """``POST /feedback`` alone (mount it behind the "feedback" scope)."""
    router = APIRouter()

    @router.post("/feedback", status_code=202, tags=["monitor"])
    async def post_feedback(request: Request) -> Response:
        """Store delayed labels durably; 202 with accepted/matched/unmatched counts."""
        try:
            try:
                body = orjson.loads(await request.body())
            except orjson.JSONDecodeError as exc:
                if "depth" in str(exc):
                    raise InvalidInput(
                        "The body is nested deeper than JSON parsing allows (1024 levels); "
                        'send a label object, a list of them, or {"feedback": [...]}.'
                    ) from exc
                raise InvalidInput(f"The body is not valid JSON: {exc}.") from exc
            result = await monitor.afeedback(_items(body))
        except MloopError as exc:
            return _error(exc, request)
        return JSONResponse(result.to_dict(), status_code=202)

    return router


def status_router(monitor: Monitor) -> APIRouter:
    """``GET /models/{name}/monitor/status`` and ``/report`` (mount behind a read scope)."""
    router = APIRouter()

    @router.get("/models/{name}/monitor/status", tags=["monitor"])
    async def get_status(
        request: Request,
        name: str,
        since: str = "24h",
        until: str | None = None,
        window: str | None = None,
        version: int | None = None,
        detail: bool = False,
    ) -> Response:
        """Per-window drift, data quality and performance of model ``name``."""
        try:
            status = await run_in_threadpool(
                monitor.status, name, since=since, until=until, window=window, version=version
            )
        except MloopError as exc:
            return _error(exc, request)
        return Response(
            orjson.dumps(status.to_dict(detail=detail), option=orjson.OPT_SERIALIZE_NUMPY),
            media_type="application/json",
        )

    @router.get("/models/{name}/monitor/report", tags=["monitor"])
    async def get_report(
        request: Request,
        name: str,
        since: str = "24h",
        until: str | None = None,
        window: str | None = None,
        version: int | None = None,
    ) -> Response:
        """The self-contained HTML monitoring report of model ``name``."""
        try:
            _status, html = await run_in_threadpool(
                monitor.report, name, since=since, until=until, window=window, version=version
            )
        except MloopError as exc:
            return _error(exc, request)
        return HTMLResponse(html)

    return router

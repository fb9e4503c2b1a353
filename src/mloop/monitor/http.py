"""HTTP routes of the live monitor, as a FastAPI ``APIRouter`` that serving mounts.

``POST /feedback`` (one label, a list, or ``{"feedback": [...]}``) answers 202 with
counts once the labels are on disk; ``GET /models/{name}/monitor/status`` and
``/report`` give the same data as ``mloop monitor status`` / ``report``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from mloop.errors import InvalidInput, MloopError
from mloop.monitor._service import Monitor

__all__ = ["router_for"]


def _error(exc: MloopError, request: Request) -> JSONResponse:
    request_id = request.headers.get("x-request-id")
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


def router_for(
    monitor: Monitor,
    *,
    feedback_dependencies: Sequence[Any] = (),
    read_dependencies: Sequence[Any] = (),
) -> APIRouter:
    """Routes for ``monitor``; pass auth dependencies (e.g. the "feedback" scope) per group."""
    router = APIRouter()
    feedback_deps = [d if hasattr(d, "dependency") else Depends(d) for d in feedback_dependencies]
    read_deps = [d if hasattr(d, "dependency") else Depends(d) for d in read_dependencies]

    @router.post("/feedback", status_code=202, dependencies=feedback_deps, tags=["monitor"])
    async def post_feedback(request: Request) -> Response:
        """Store delayed labels durably; 202 with accepted/matched/unmatched counts."""
        try:
            try:
                body = orjson.loads(await request.body())
            except orjson.JSONDecodeError as exc:
                raise InvalidInput(f"The body is not valid JSON: {exc}.") from exc
            result = await monitor.afeedback(_items(body))
        except MloopError as exc:
            return _error(exc, request)
        return JSONResponse(result.to_dict(), status_code=202)

    @router.get("/models/{name}/monitor/status", dependencies=read_deps, tags=["monitor"])
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

    @router.get("/models/{name}/monitor/report", dependencies=read_deps, tags=["monitor"])
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

"""Open Inference Protocol (v2) routes: health, server and model metadata, infer, repository."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from mloop.auth import Scope
from mloop.errors import InvalidInput, MloopError, UserError
from mloop.serving._flow import ServingContext
from mloop.serving._http import json_response
from mloop.serving._v2 import HEADER, decode_infer, encode_infer, model_metadata

__all__ = ["v2_infer", "v2_router"]


def _installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mloop")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


_VERSION = _installed_version()

_INFER_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "inputs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name", "shape", "datatype", "data"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "shape": {"type": "array", "items": {"type": "integer"}},
                                    "datatype": {"type": "string"},
                                    "data": {"type": "array", "items": {}},
                                },
                            },
                        },
                        "outputs": {"type": "array", "items": {"type": "object"}},
                    },
                }
            }
        },
    }
}


async def v2_infer(
    ctx: ServingContext,
    headers: Mapping[str, str],
    state: dict[str, Any],
    read_body: Callable[[], Awaitable[bytes]],
    name: str,
    version: int | None,
) -> Response:
    """``POST /v2/models/{name}[/versions/{version}]/infer`` (the route and the fast path)."""
    engine = ctx.engine
    await ctx.authorize(headers, Scope.PREDICT, state)
    body = await read_body()
    header_len = headers.get(HEADER)
    if header_len is not None and not (header_len.isascii() and header_len.isdigit()):
        raise InvalidInput(
            f"{HEADER} {header_len!r} is not a byte count; send the JSON part's length in bytes.",
            header=HEADER,
        )
    decision = engine.route(name, headers.get("x-mloop-key"), version)
    served = await engine.pool.get(name, decision.version)
    job, parsed = decode_infer(body, int(header_len) if header_len else None, served.version)
    outcome = await ctx.predict(name, job, headers, state, api="v2", decision=decision)
    content, json_len = encode_infer(outcome.predictions, parsed, name, outcome.version.version)
    out_headers = {"x-mloop-version": str(outcome.version.version)}
    media = "application/json"
    if json_len is not None:
        out_headers[HEADER] = str(json_len)
        media = "application/octet-stream"
    return Response(content, media_type=media, headers=out_headers)


def v2_router(ctx: ServingContext) -> APIRouter:
    """The v2 routes, bound to one serving context."""
    router = APIRouter(prefix="/v2", tags=["v2"])
    engine = ctx.engine

    @router.get("/health/live", summary="Server is alive")
    async def live() -> Response:
        return json_response({"live": True})

    @router.get("/health/ready", summary="Every served model is warm")
    async def ready() -> Response:
        # Not ready while a version that takes traffic failed its last load (a tampered
        # artifact, a missing extra): every request to it would fail.
        in_use = engine.router.versions_in_use()
        failing = sorted(
            f"{name}:{version}"
            for (name, version) in engine.pool.failures
            if version in in_use.get(name, ())
        )
        ok = engine.ready and not failing
        body: dict[str, Any] = {"ready": ok}
        if failing:
            body["failing"] = failing
        return json_response(body, 200 if ok else 503)

    @router.get("", summary="Server metadata")
    async def server_metadata(request: Request) -> Response:
        await ctx.authorize(request.headers, Scope.PREDICT, request.scope["state"])
        return json_response(
            {
                "name": "mloop",
                "version": _VERSION,
                "extensions": ["binary_tensor_data", "model_repository"],
            }
        )

    async def _metadata(request: Request, name: str, version: int | None) -> Response:
        await ctx.authorize(request.headers, Scope.PREDICT, request.scope["state"])
        decision = engine.route(name, None, version)
        served = await engine.pool.get(name, decision.version)
        return json_response(model_metadata(served.version))

    @router.get("/models/{name}", summary="Model metadata")
    async def metadata(name: str, request: Request) -> Response:
        return await _metadata(request, name, None)

    @router.get("/models/{name}/versions/{version}", summary="Model version metadata")
    async def metadata_version(name: str, version: int, request: Request) -> Response:
        return await _metadata(request, name, version)

    async def _ready(request: Request, name: str, version: int | None) -> Response:
        await ctx.authorize(request.headers, Scope.PREDICT, request.scope["state"])
        decision = engine.route(name, None, version)
        body: dict[str, Any] = {"name": name, "version": str(decision.version), "ready": True}
        try:
            # Ready means it loads: a version that does not exist is a 404, one whose
            # artifact fails to load (tampered, missing extra) is not ready.
            await engine.pool.get(name, decision.version)
        except UserError:
            raise
        except MloopError as exc:
            body.update(ready=False, error=exc.to_dict()["error"])
            return json_response(body, 503)
        return json_response(body)

    @router.get("/models/{name}/ready", summary="Model is servable")
    async def model_ready(name: str, request: Request) -> Response:
        return await _ready(request, name, None)

    @router.get("/models/{name}/versions/{version}/ready", summary="Model version is servable")
    async def model_version_ready(name: str, version: int, request: Request) -> Response:
        return await _ready(request, name, version)

    @router.post("/models/{name}/infer", openapi_extra=_INFER_DOC, summary="Infer")
    async def infer(name: str, request: Request) -> Response:
        return await v2_infer(
            ctx, request.headers, request.scope["state"], request.body, name, None
        )

    @router.post(
        "/models/{name}/versions/{version}/infer", openapi_extra=_INFER_DOC, summary="Infer"
    )
    async def infer_version(name: str, version: int, request: Request) -> Response:
        return await v2_infer(
            ctx, request.headers, request.scope["state"], request.body, name, version
        )

    @router.post("/repository/index", summary="Served models (scope deploy)")
    async def index(request: Request) -> Response:
        await ctx.authorize(request.headers, Scope.DEPLOY, request.scope["state"])
        resident = set(engine.pool.resident())
        rows = [
            {
                "name": n,
                "version": str(v),
                "state": "READY" if (n, v) in resident else "UNAVAILABLE",
            }
            for n, versions in sorted(engine.router.versions_in_use().items())
            for v in sorted(versions)
        ]
        return json_response(rows)

    @router.post("/repository/models/{name}/load", summary="Load and warm (scope deploy)")
    async def load(name: str, request: Request) -> Response:
        await ctx.authorize(request.headers, Scope.DEPLOY, request.scope["state"])
        decision = engine.route(name, None, None)
        await engine.pool.get(name, decision.version)
        return json_response({"name": name, "version": str(decision.version), "state": "READY"})

    @router.post("/repository/models/{name}/unload", summary="Unload (scope deploy)")
    async def unload(name: str, request: Request) -> Response:
        await ctx.authorize(request.headers, Scope.DEPLOY, request.scope["state"])
        decision = engine.route(name, None, None)
        removed = engine.pool.evict(name, decision.version)
        return json_response({"name": name, "unloaded": removed})

    return router

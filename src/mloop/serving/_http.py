"""HTTP plumbing shared by every route: request ids, body limits, access logs, error bodies.

``RequestContext`` is a pure ASGI middleware (no ``BaseHTTPMiddleware``: it costs a
task and a queue per request). Every error leaves as ``{"error": {...}}`` from
``mloop.errors``, including FastAPI's own validation errors and unknown routes.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mloop.errors import (
    FatalError,
    Forbidden,
    InvalidInput,
    MloopError,
    NotFound,
    PayloadTooLarge,
    UserError,
)
from mloop.serving._local_only import LocalOnly

__all__ = [
    "RequestContext",
    "error_response",
    "install_error_handlers",
    "internal_error_response",
    "json_response",
    "request_id",
]

log = logging.getLogger("mloop.serving")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response serialised with orjson."""
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def request_id(request: Request) -> str:
    """The id ``RequestContext`` gave this request."""
    return str(request.scope.get("state", {}).get("request_id", ""))


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The request body is larger than {limit} bytes; send fewer rows per request.",
        limit_bytes=limit,
    )


class RequestContext:
    """Assigns request ids, enforces the body limit and writes one access-log line."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        access_log: bool,
        on_error: Callable[[MloopError], None],
        local_only: LocalOnly | None = None,
    ) -> None:
        self.app = app
        self.local_only = local_only
        self.max_body = max_body_bytes
        self.access = structlog.get_logger("mloop.access") if access_log else None
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client_rid = ""
        length = -1
        host = origin = content_type = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                client_rid = value.decode("latin-1")[:128]
            elif key == b"content-length":
                length = int(value) if value.isdigit() else -1
            elif key == b"host":
                host = value
            elif key == b"origin":
                origin = value
            elif key == b"content-type":
                content_type = value
        # The id is always the server's: it keys the prediction log, and feedback joins on
        # it, so a client must not be able to give two predictions one id. The client's
        # own id travels beside it (state, access log, X-Client-Request-Id).
        rid = os.urandom(8).hex()
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        if client_rid:
            state["client_request_id"] = client_rid
        if self.local_only is not None and self.local_only.applies(scope.get("server")):
            try:
                self.local_only.check(scope.get("method", "GET"), host, origin, content_type)
            except Forbidden as refused:
                self.on_error(refused)
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                else:
                    await _send_error(send, refused, rid, client_rid)
                return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        id_headers = [(b"x-request-id", rid.encode("latin-1"))]
        if client_rid:
            id_headers.append((b"x-client-request-id", client_rid.encode("latin-1")))
        if length > self.max_body:
            exc = _too_large(self.max_body)
            self.on_error(exc)
            await _send_error(send, exc, rid, client_rid)
            return
        # The HTTP server reads exactly Content-Length bytes, so a declared length within
        # the limit bounds the body; only bodies of unknown length are counted.
        checked_receive = receive if length >= 0 else _counted(receive, self.max_body)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), *id_headers]
            await send(message)

        try:
            await self.app(scope, checked_receive, send_with_id)
        finally:
            if self.access is not None:
                self.access.info(
                    "request",
                    request_id=rid,
                    client_request_id=client_rid or None,
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    latency_ms=round((time.perf_counter() - started) * 1000, 3),
                    model=state.get("model"),
                    version=state.get("version"),
                    key_id=state.get("key_id"),
                )


def _counted(receive: Receive, limit: int) -> Receive:
    """``receive`` that fails with 413 once the body passes ``limit`` bytes."""
    seen = 0

    async def counted_receive() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _too_large(limit)
        return message

    return counted_receive


async def _send_error(send: Send, exc: MloopError, rid: str, client_rid: str = "") -> None:
    body = orjson.dumps(exc.to_dict(rid))
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", rid.encode("latin-1")),
        *((k.lower().encode(), v.encode()) for k, v in exc.headers().items()),
    ]
    if client_rid:
        headers.append((b"x-client-request-id", client_rid.encode("latin-1")))
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def error_response(exc: MloopError, rid: str) -> Response:
    """The JSON response for one mloop error."""
    return json_response(exc.to_dict(rid), exc.status_code, exc.headers())


def internal_error_response(
    exc: Exception, rid: str, on_error: Callable[[MloopError], None]
) -> Response:
    """Log an unexpected exception (a bug) and answer a fatal 500 error body."""
    log.exception("unhandled error", extra={"request_id": rid})
    err = FatalError(
        f"Internal error ({type(exc).__name__}: {exc}). This is a bug; please report it "
        "with the request id.",
    )
    on_error(err)
    return error_response(err, rid)


def _field_messages(errors: Iterable[Any]) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ())]
        out.append({"field": ".".join(loc), "message": e.get("msg", ""), "kind": e.get("type", "")})
    return out


def install_error_handlers(
    app: FastAPI,
    on_error: Callable[[MloopError], None],
    known_models: Callable[[], list[str] | None],
) -> None:
    """Map every exception to the error tree's JSON body and status."""

    @app.exception_handler(MloopError)
    async def _mloop(request: Request, exc: MloopError) -> Response:
        on_error(exc)
        return error_response(exc, request_id(request))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        fields = _field_messages(exc.errors())
        first = fields[0] if fields else {"field": "body", "message": "invalid"}
        err = InvalidInput(f"{first['field']}: {first['message']}", violations=fields)
        on_error(err)
        return error_response(err, request_id(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        err: MloopError
        if exc.status_code == 404:
            known = known_models()
            served = (
                "list the served models with GET /models (key with scope predict)"
                if known is None
                else f"served models: {', '.join(known) or 'none'}"
            )
            err = NotFound(
                f"No route {request.method} {request.url.path}. Predict with POST "
                f"/models/{{name}}/predict or /v2/models/{{name}}/infer; {served}. "
                "API docs: /docs",
                **({} if known is None else {"known_models": known}),
            )
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            err = UserError(
                f"{request.method} is not allowed on {request.url.path}; use {allowed or 'another method'}. "
                "API docs: /docs",
                status=405,
                allowed=allowed,
            )
            err.status_code = 405  # type: ignore[misc]
        else:
            err = UserError(str(exc.detail), status=exc.status_code)
            err.status_code = exc.status_code  # type: ignore[misc]
        on_error(err)
        response = error_response(err, request_id(request))
        if exc.headers:
            response.headers.update(exc.headers)  # e.g. Allow on a 405
        return response

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        return internal_error_response(exc, request_id(request), on_error)

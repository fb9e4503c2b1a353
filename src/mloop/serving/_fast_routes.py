"""The prediction routes answered without FastAPI's router: same handlers, less work per request.

mloop's own ASGI layer, on the hot path. ``POST /models/{name}[/versions/{v}]/predict``
and ``POST /v2/models/{name}[/versions/{v}]/infer`` go straight to the handler the
FastAPI route calls (``predict_records``, ``v2_infer``), skipping route matching over every
route, dependency solving, the ``Request`` object and two exception middlewares: about
230 us of a ~1 ms single-row request, measured in-process with
``benchmarks/serving/profile_request.py``. Anything that does not match exactly (another
method, a trailing slash, a version that is not a number) goes on to FastAPI, which
also keeps documenting these routes at ``/docs``. ``serving.fast_routes = false`` sends
every request through FastAPI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from mloop.errors import MloopError
from mloop.serving._flow import ServingContext
from mloop.serving._http import error_response, internal_error_response
from mloop.serving._routes import predict_records
from mloop.serving._v2_routes import v2_infer

__all__ = ["FastRoutes", "match_prediction"]

Handler = Callable[
    [ServingContext, Headers, dict[str, Any], Callable[[], Awaitable[bytes]], str, int | None],
    Awaitable[Response],
]
_HANDLERS: dict[str, Handler] = {"predict": predict_records, "infer": v2_infer}


def match_prediction(path: str) -> tuple[str, str, int | None] | None:
    """``(verb, model, version)`` when ``path`` is a prediction route, else None.

    ``verb`` is ``"predict"`` (records API) or ``"infer"`` (v2); the version is None
    for the routes without one.
    """
    if not path.startswith("/"):
        return None
    segments = path[1:].split("/")
    verb = "predict"
    if segments[0] == "v2":
        verb, segments = "infer", segments[1:]
    if len(segments) == 3:
        models, name, last = segments
        version = None
    elif len(segments) == 5 and segments[2] == "versions":
        models, name, _, number, last = segments
        if not (number.isascii() and number.isdigit()):
            return None  # FastAPI answers with its field-level 422
        version = int(number)
    else:
        return None
    if models != "models" or not name or last != verb:
        return None
    return verb, name, version


class _Disconnected(Exception):
    """The client went away before sending its whole body."""


class FastRoutes:
    """Answers prediction requests directly; passes every other request to ``app``."""

    def __init__(
        self, app: ASGIApp, *, ctx: ServingContext, on_error: Callable[[MloopError], None]
    ) -> None:
        self.app = app
        self.ctx = ctx
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = None
        if scope["type"] == "http" and scope["method"] == "POST":
            path = scope["path"]
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            route = match_prediction(path)
        if route is None:
            await self.app(scope, receive, send)
            return
        verb, name, version = route
        state = scope["state"]

        async def read_body() -> bytes:
            chunks = []
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise _Disconnected
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    return b"".join(chunks)

        try:
            response = await _HANDLERS[verb](
                self.ctx, Headers(scope=scope), state, read_body, name, version
            )
        except _Disconnected:
            return
        except MloopError as exc:
            self.on_error(exc)
            response = error_response(exc, state["request_id"])
        except Exception as exc:  # a bug: answered like FastAPI's handler for Exception
            response = internal_error_response(exc, state["request_id"], self.on_error)
        await response(scope, receive, send)

"""The dashboard's HTTP routes under ``/ui``: pages, their JSON twins, rollout commands, assets.

Reading needs the ``view`` scope (``deploy`` and ``admin`` keys view too); rollout
commands need ``deploy``. A browser cannot add an ``Authorization`` header to a page
load, so a key given once (``POST /ui/login``) is kept in an HTTP-only, same-site
cookie and read like the header. Commands are JSON POSTs with a custom header,
which no other site's page can send without a CORS preflight this server refuses.
On a keyless loopback server every route is open, as the API is.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from mloop.auth import Guard, Principal, Scope
from mloop.dashboard import _catalog_pages as catalog_pages
from mloop.dashboard import _catalog_views as catalog
from mloop.dashboard import _live_pages as live_pages
from mloop.dashboard import _live_views as live
from mloop.dashboard._gateway_pages import gateway_page
from mloop.dashboard._gateway_views import gateway_view
from mloop.dashboard._sources import Sources
from mloop.errors import Forbidden, InvalidInput, MloopError, NotFound, Unauthenticated
from mloop.rollout import Rollouts

__all__ = ["COOKIE", "dashboard_router"]

COOKIE = "mloop_ui_key"
COMMAND_HEADER = "x-mloop-ui"
COMMANDS = ("promote", "rollback", "pause", "resume")
_ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css", "LICENSE": "text/plain"}
_SECURITY_HEADERS = {
    # Everything the pages load is served from here: no CDN, no inline script runs.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@functools.lru_cache(maxsize=len(_ASSETS))
def _asset(name: str) -> bytes:
    return importlib.resources.files("mloop.dashboard").joinpath("static", name).read_bytes()


def _json(data: Any, status: int = 200) -> Response:
    body = orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
    return Response(body, status_code=status, media_type="application/json")


def _request_id(request: Request) -> str | None:
    state = request.scope.get("state") or {}
    return state.get("request_id") or request.headers.get("x-request-id")


def _contract(sources: Sources, name: str, version: int) -> Any:
    contract = sources.registry.get(f"{name}:{version}").schema_dict
    if contract is None:
        raise NotFound(
            f"{name}:{version} has no contract: it was registered without training data. "
            "Register a new version with training_data=... to infer one."
        )
    return contract


def dashboard_router(sources: Sources, guard: Guard) -> APIRouter:
    """Every ``/ui`` route over ``sources``, behind ``guard`` (the server's key check)."""
    router = APIRouter(prefix="/ui", include_in_schema=False)

    def authorize(request: Request, scope: Scope) -> Principal:
        cookie = request.cookies.get(COOKIE)
        return guard.check(request.headers, scope, {"api_key": cookie} if cookie else None)

    async def html(request: Request, build: Callable[[], str]) -> Response:
        try:
            authorize(request, Scope.VIEW)
            body = await run_in_threadpool(build)
        except MloopError as exc:
            login = isinstance(exc, (Unauthenticated, Forbidden))
            text = live_pages.error_page(exc.status_code, exc.message, login=login)
            return HTMLResponse(text, status_code=exc.status_code, headers=_SECURITY_HEADERS)
        return HTMLResponse(body, headers=_SECURITY_HEADERS)

    async def api(request: Request, build: Callable[[], Any]) -> Response:
        try:
            authorize(request, Scope.VIEW)
            return _json(await run_in_threadpool(build))
        except MloopError as exc:
            return JSONResponse(
                exc.to_dict(_request_id(request)),
                status_code=exc.status_code,
                headers=exc.headers(),
            )

    def models_data() -> list[dict[str, Any]]:
        return catalog.models_overview(sources)

    def monitor_data(name: str, since: str, window: str, version: str) -> dict[str, Any]:
        return live.monitor_view(sources, name, since=since, window=window, version=version)

    @router.get("/")
    async def models_page(request: Request) -> Response:
        return await html(request, lambda: catalog_pages.models_page(models_data()))

    @router.get("/api/models")
    async def models_api(request: Request) -> Response:
        return await api(request, models_data)

    @router.get("/models/{name}")
    async def model_page(request: Request, name: str) -> Response:
        return await html(
            request, lambda: catalog_pages.model_page(catalog.model_detail(sources, name))
        )

    @router.get("/api/models/{name}")
    async def model_api(request: Request, name: str) -> Response:
        return await api(request, lambda: catalog.model_detail(sources, name))

    @router.get("/models/{name}/versions/{version}")
    async def version_page(request: Request, name: str, version: int) -> Response:
        return await html(
            request,
            lambda: catalog_pages.version_page(catalog.version_detail(sources, name, version)),
        )

    @router.get("/api/models/{name}/versions/{version}")
    async def version_api(request: Request, name: str, version: int) -> Response:
        return await api(request, lambda: catalog.version_detail(sources, name, version))

    @router.get("/models/{name}/versions/{version}/contract.json")
    async def contract_download(request: Request, name: str, version: int) -> Response:
        response = await api(request, lambda: _contract(sources, name, version))
        if response.status_code == 200:
            filename = f"{name}-v{version}-contract.json".replace('"', "")
            response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    @router.get("/models/{name}/compare")
    async def compare_page(request: Request, name: str, a: int, b: int) -> Response:
        return await html(
            request,
            lambda: catalog_pages.compare_page(catalog.compare_versions(sources, name, a, b)),
        )

    @router.get("/api/models/{name}/compare")
    async def compare_api(request: Request, name: str, a: int, b: int) -> Response:
        return await api(request, lambda: catalog.compare_versions(sources, name, a, b))

    @router.get("/models/{name}/monitor")
    async def monitor_page(
        request: Request,
        name: str,
        since: str = "24h",
        window: str = "1h",
        version: str = "",
    ) -> Response:
        return await html(
            request,
            lambda: live_pages.monitor_page(
                monitor_data(name, since, window, version), live.WINDOW_CHOICES, live.SINCE_CHOICES
            ),
        )

    @router.get("/api/models/{name}/monitor")
    async def monitor_api(
        request: Request,
        name: str,
        since: str = "24h",
        window: str = "1h",
        version: str = "",
    ) -> Response:
        return await api(request, lambda: monitor_data(name, since, window, version))

    @router.get("/models/{name}/rollout")
    async def rollout_page(request: Request, name: str) -> Response:
        return await html(
            request, lambda: live_pages.rollout_page(live.rollout_view(sources, name))
        )

    @router.get("/api/models/{name}/rollout")
    async def rollout_api(request: Request, name: str) -> Response:
        return await api(request, lambda: live.rollout_view(sources, name))

    @router.post("/api/models/{name}/rollout/{command}")
    async def rollout_command(request: Request, name: str, command: str) -> Response:
        """Promote, roll back, pause or resume the active rollout (scope ``deploy``)."""
        try:
            principal = authorize(request, Scope.DEPLOY)
            if request.headers.get(COMMAND_HEADER) != "1":
                raise InvalidInput(
                    f"Rollout commands from the dashboard carry the header '{COMMAND_HEADER}: 1'; "
                    f"scripts can use: mloop rollout {command} {name}."
                )
            if command not in COMMANDS:
                raise InvalidInput(
                    f"Unknown command {command!r}; use one of: {', '.join(COMMANDS)}."
                )
            body = await request.body()
            reason = ""
            if body:
                try:
                    reason = str(orjson.loads(body).get("reason") or "")
                except (orjson.JSONDecodeError, AttributeError) as exc:
                    raise InvalidInput('Send a JSON object, e.g. {"reason": "bad p99"}.') from exc
            actor = f"dashboard:{principal.name}"
            state = await run_in_threadpool(
                Rollouts(sources.registry).command, name, command, actor=actor, reason=reason
            )
        except MloopError as exc:
            return JSONResponse(
                exc.to_dict(_request_id(request)),
                status_code=exc.status_code,
                headers=exc.headers(),
            )
        return _json({"rollout": state.to_dict()})

    @router.get("/activity")
    async def activity_page(request: Request) -> Response:
        return await html(request, lambda: live_pages.activity_page(live.activity(sources)))

    @router.get("/api/activity")
    async def activity_api(request: Request) -> Response:
        return await api(request, lambda: live.activity(sources))

    @router.get("/gateway")
    async def gateway_screen(request: Request) -> Response:
        return await html(request, lambda: gateway_page(gateway_view(sources)))

    @router.get("/api/gateway")
    async def gateway_api(request: Request) -> Response:
        return await api(request, lambda: gateway_view(sources))

    @router.post("/login")
    async def login(request: Request) -> Response:
        """Check a key for ``view`` and keep it in a cookie for the pages."""
        try:
            # JSON only: a page on another site can post a form or text/plain here without
            # asking, and could plant its own key in this browser (login CSRF).
            kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if kind != "application/json":
                raise InvalidInput(
                    f"Send the key as JSON with Content-Type: application/json (got {kind!r})."
                )
            try:
                token = str(orjson.loads(await request.body())["api_key"])
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                raise InvalidInput('Send {"api_key": "mlp_…"} as JSON.') from exc
            principal = guard.check({"authorization": f"Bearer {token}"}, Scope.VIEW)
        except MloopError as exc:
            return JSONResponse(
                exc.to_dict(_request_id(request)),
                status_code=exc.status_code,
                headers=exc.headers(),
            )
        response = _json({"key_id": principal.key_id, "name": principal.name})
        secure = request.url.scheme == "https"
        response.set_cookie(
            COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/ui"
        )
        return response

    @router.get("/static/{asset}")
    async def static(asset: str) -> Response:
        if asset not in _ASSETS:
            missing = NotFound(f"No dashboard asset {asset!r}; known: {', '.join(_ASSETS)}.")
            return JSONResponse(missing.to_dict(None), status_code=missing.status_code)
        return Response(
            _asset(asset),
            media_type=_ASSETS[asset],
            headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    return router

"""The gateway's HTTP face: OpenAI-compatible chat completions, models, async jobs, metrics,
status."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mloop.auth import (
    ANONYMOUS,
    Guard,
    KeyStore,
    LimitStore,
    Principal,
    Scope,
    auth_required,
    is_loopback,
)
from mloop.config import GatewaySettings, Settings
from mloop.errors import (
    ConfigurationError,
    Forbidden,
    InvalidInput,
    MloopError,
    NotFound,
    PayloadTooLarge,
    UserError,
)
from mloop.gateway._ab_http import ab_key, add_ab_routes
from mloop.gateway._config import GatewayConfig
from mloop.gateway._gateway import Gateway
from mloop.gateway._jobs import JobRunner, JobStore, SqlJobStore
from mloop.gateway._ledger import Ledger, MemoryLedger, SqlLedger
from mloop.gateway._live_ab import LiveAB, Observed
from mloop.gateway._prompts import PromptRegistry
from mloop.gateway._spending import Spending
from mloop.gateway._status import gateway_status
from mloop.gateway._tracing import GatewayTracer
from mloop.store import MetadataStore

__all__ = ["create_app", "error_body", "ledger_for"]


def error_body(exc: MloopError, request_id: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape carrying mloop's taxonomy: message, type, code, param, retryable."""
    body = exc.to_dict(request_id)
    body["error"].setdefault("param", None)
    return body


def _error_response(exc: MloopError, request_id: str) -> JSONResponse:
    headers = {**exc.headers(), "x-request-id": request_id}
    return JSONResponse(error_body(exc, request_id), status_code=exc.status_code, headers=headers)


def _options(request: Request) -> tuple[str, float | None]:
    priority = request.headers.get("x-mloop-priority", "interactive").strip().lower()
    raw = request.headers.get("x-mloop-deadline-ms")
    if raw is None:
        return priority, None
    try:
        ms = float(raw)
    except ValueError:
        ms = -1.0
    if not 0 < ms <= _MAX_DEADLINE_MS:  # also NaN and infinity, which waited for ever
        raise InvalidInput(
            f"X-Mloop-Deadline-Ms={raw[:40]!r} must be a number of milliseconds between 0 and "
            f"{_MAX_DEADLINE_MS:.0f} (one hour).",
            param="X-Mloop-Deadline-Ms",
        )
    return priority, ms / 1000.0


_MAX_DEADLINE_MS = 3_600_000.0


def _check_webhook(url: Any, allowed: frozenset[str]) -> None:
    """A webhook must be http(s) to loopback or to a host the operator allowed."""
    parts = urlsplit(str(url))
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInput(f"webhook_url={str(url)[:100]!r} must be an http(s) URL.")
    if not (is_loopback(host) or host in allowed):
        raise Forbidden(
            f"webhook_url host {host!r} is not allowed: the gateway posts results only to "
            "loopback and to the hosts in gateway.webhook_hosts (ask the operator to add it).",
            param="webhook_url",
        )


async def _json_body(request: Request, max_bytes: int) -> dict[str, Any]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"The request body is larger than {max_bytes} bytes.")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > max_bytes:
            raise PayloadTooLarge(f"The request body is larger than {max_bytes} bytes.")
    try:
        # orjson, not json: it refuses NaN/Infinity (a provider would choke on them) and
        # nesting past 1,024 levels (json recursed until RecursionError: a 500).
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"The request body is not valid JSON: {exc}.") from exc
    if not isinstance(body, dict):
        raise InvalidInput("The request body must be a JSON object.")
    return body


def _caller(principal: Principal) -> str | None:
    """The key whose limits apply (none on an open server)."""
    return None if principal is ANONYMOUS else principal.key_id


def ledger_for(config: GatewayConfig | None, metadata: MetadataStore) -> Ledger:
    """The spend ledger ``config`` names (the SQL one in ``metadata`` when none)."""
    if config is None:
        return SqlLedger(metadata)
    if config.budget_ledger == "memory":
        return MemoryLedger()
    if config.budget_ledger == "redis":
        if not config.redis_url:
            raise ConfigurationError(
                "[budgets] ledger = 'redis' needs a Redis URL: set [scheduler] redis_url "
                "or MLOOP_REDIS_URL."
            )
        from mloop.gateway._redis_ledger import RedisLedger

        return RedisLedger(config.redis_url, prefix=config.key_prefix)
    return SqlLedger(metadata)


def create_app(
    config: GatewayConfig,
    settings: Settings | None = None,
    *,
    gateway: Gateway | None = None,
    job_store: JobStore | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
    auth: bool | None = None,
    webhook_hosts: Iterable[str] | None = None,
    ledger: Ledger | None = None,
) -> FastAPI:
    """The gateway ASGI app; jobs persist in ``<home>/gateway.db`` unless a store is given.

    ``auth``: require API keys with scope ``gateway`` (``admin`` for ``/metrics`` and
    ``/v1/status``);
    default from ``settings.gateway.auth`` and host, as ``mloop serve`` decides.
    ``webhook_hosts``: where ``/v1/jobs`` may send results besides loopback (default
    ``settings.gateway.webhook_hosts``). With keys, each key's limits (routes, RPM/TPM,
    USD budgets; ``mloop gateway limit``) are enforced through ``ledger`` (default from
    ``[budgets] ledger``).
    """
    gw = gateway or Gateway(config, transport=transport)
    if gw.tracer is None:
        gw.tracer = GatewayTracer.from_settings(settings)
    gsettings = settings.gateway if settings is not None else GatewaySettings()
    required = auth if auth is not None else auth_required(gsettings.auth, gsettings.host)
    keys = None
    limit_store: LimitStore | None = None
    if required:
        if settings is None:
            raise ConfigurationError("The gateway needs settings to check API keys.")
        metadata = MetadataStore.from_settings(settings)
        keys = KeyStore(metadata)
        limit_store = LimitStore(metadata)
        if gw.spending is None:
            gw.spending = Spending(
                limit_store,
                ledger or ledger_for(config, metadata),
                gw.metrics,
                fail_open=config.budget_fail_open,
                hold_ttl_s=config.budget_hold_ttl_s,
            )
    if gw.prompts is None and any(r.prompts for r in config.routes.values()):
        if settings is None:
            raise ConfigurationError(
                "Routes refer to registered prompts: the gateway needs settings."
            )
        gw.prompts = LiveAB(PromptRegistry(MetadataStore.from_settings(settings)), gateway=gw)
    live = gw.prompts if isinstance(gw.prompts, LiveAB) else None
    guard = Guard(keys, required=required)
    if webhook_hosts is None:
        webhook_hosts = [h.strip() for h in gsettings.webhook_hosts.split(",") if h.strip()]
    allowed_hooks = frozenset(h.lower() for h in webhook_hosts)
    max_body = gsettings.max_body_bytes

    async def gateway_key(request: Request) -> Principal:
        return guard.check(request.headers, Scope.GATEWAY)

    async def admin_key(request: Request) -> None:
        guard.check(request.headers, Scope.ADMIN)

    if job_store is None:
        home = settings.home if settings is not None else Path(".mloop").resolve()
        home.mkdir(parents=True, exist_ok=True)
        job_store = SqlJobStore(f"sqlite:///{home / 'gateway.db'}")
    store = job_store
    runner_box: dict[str, JobRunner] = {}

    def runner() -> JobRunner:
        # Made on first use too: a mounted sub-app (``mloop serve``) gets no lifespan.
        if "runner" not in runner_box:
            runner_box["runner"] = JobRunner(gw, store, webhook_transport=webhook_transport)
            runner_box["runner"].resume()
        return runner_box["runner"]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner()
        try:
            yield
        finally:
            await runner_box.pop("runner").aclose()
            await gw.aclose()
            if gw.spending is not None:
                await gw.spending.aclose()

    app = FastAPI(title="mloop gateway", lifespan=lifespan)
    app.state.gateway = gw
    app.state.job_store = store

    @app.exception_handler(MloopError)
    async def _on_error(request: Request, exc: MloopError) -> JSONResponse:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        return _error_response(exc, rid)

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Unknown paths and methods answer in the same error shape as everything else.
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        err: MloopError
        if exc.status_code == 404:
            err = NotFound(
                f"No route {request.method} {request.url.path}. The gateway serves POST "
                "/v1/chat/completions, GET /v1/models, /v1/jobs and /v1/status; API docs: /docs"
            )
        else:
            err = UserError(f"{request.method} {request.url.path}: {exc.detail}.")
            err.status_code = exc.status_code  # type: ignore[misc]
        response = _error_response(err, rid)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    async def observe(
        rid: str,
        key: str,
        caller: str | None,
        body: dict[str, Any],
        served: str,
        output: str | None,
        resp_id: Any,
    ) -> dict[str, str]:
        """Count the answer in a live A/B, if one runs on its prompt; never fails the answer."""
        headers = {"x-mloop-request-id": rid}
        if live is None:
            return headers
        try:
            found: Observed | None = await live.observe(
                request_id=rid,
                key=key,
                served=served,
                messages=body["messages"],
                output=output,
                response_id=resp_id if isinstance(resp_id, str) else None,
                caller=caller,
            )
        except Exception as exc:  # e.g. the database is down: the answer still goes out
            logging.getLogger(__name__).warning("live A/B: not recorded: %r", exc)
            return headers
        if found is not None:
            headers |= {"x-mloop-prompt-version": served, **found.headers()}
        return headers

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: Request, principal: Principal = Depends(gateway_key)) -> Response:
        if gw.tracer is None:
            return await _chat(request, principal)
        with gw.tracer.continuing(request.headers):
            return await _chat(request, principal)

    async def _chat(request: Request, principal: Principal) -> Response:
        body = await _json_body(request, max_body)
        priority, deadline = _options(request)
        caller = _caller(principal)
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        key = ab_key(body, caller, rid)
        options: dict[str, Any] = {"priority": priority, "deadline_s": deadline, "caller": caller}
        if body.get("stream"):
            started = await gw.stream(body, **options, ab_key=key)
            tags = await observe(rid, key, caller, body, started.template_version, None, None)

            async def sse() -> AsyncIterator[bytes]:
                try:
                    async for chunk in started.chunks:
                        yield b"data: " + json.dumps(chunk).encode() + b"\n\n"
                except MloopError as exc:
                    yield b"data: " + json.dumps(error_body(exc)).encode() + b"\n\n"
                except httpx.HTTPError as exc:
                    err = {
                        "error": {
                            "message": f"upstream stream broke: {exc!r}",
                            "type": "retryable",
                            "code": "unavailable",
                            "param": None,
                        }
                    }
                    yield b"data: " + json.dumps(err).encode() + b"\n\n"
                yield b"data: [DONE]\n\n"

            return StreamingResponse(
                sse(), media_type="text/event-stream", headers=started.headers() | tags
            )
        result = await gw.chat(body, **options, ab_key=key)
        choices = result.response.get("choices") or [{}]
        output = str(((choices[0] or {}).get("message") or {}).get("content") or "")
        tags = await observe(
            rid, key, caller, body, result.template_version, output, result.response.get("id")
        )
        return JSONResponse(result.response, headers=result.headers() | tags)

    if live is not None:
        add_ab_routes(
            app,
            live,
            gateway_key=gateway_key,
            admin_key=admin_key,
            read_body=lambda request: _json_body(request, max_body),
        )

    @app.get("/v1/models", dependencies=[Depends(gateway_key)])
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": gw.models()}

    @app.post("/v1/jobs", status_code=202)
    async def submit_job(
        request: Request, principal: Principal = Depends(gateway_key)
    ) -> dict[str, Any]:
        body = await _json_body(request, max_body)
        inner = body.get("request", body)
        if not isinstance(inner, dict):
            raise InvalidInput("'request' must be a chat-completions request object.")
        _, deadline = _options(request)
        priority = str(body.get("priority") or request.headers.get("x-mloop-priority") or "batch")
        webhook = body.get("webhook_url")
        if webhook is not None:
            _check_webhook(webhook, allowed_hooks)
        if inner.get("stream"):
            raise InvalidInput("Jobs cannot stream; drop 'stream' or call /v1/chat/completions.")
        job = runner().submit(
            inner,
            priority=priority,
            webhook_url=webhook,
            deadline_s=deadline,
            caller=_caller(principal),
        )
        return job.to_dict()

    @app.get("/v1/jobs/{job_id}", dependencies=[Depends(gateway_key)])
    async def get_job(job_id: str) -> dict[str, Any]:
        return store.get(job_id).to_dict()

    @app.get("/metrics", dependencies=[Depends(admin_key)])
    async def metrics() -> Response:
        return Response(gw.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/status", dependencies=[Depends(admin_key)])
    async def status() -> dict[str, Any]:
        return await gateway_status(gw, jobs=store, limits=limit_store)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        now = gw.clock.monotonic()
        return {
            "status": "ok",
            "deployments": {name: b.state(now) for name, b in gw.breakers.items()},
        }

    return app

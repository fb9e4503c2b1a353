"""``create_app``: the ASGI application that serves every model the router names."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, FastAPI, Request

from mloop.auth import Guard, KeyStore, Scope, auth_required
from mloop.config import Settings
from mloop.errors import MloopError
from mloop.serving._engine import Engine
from mloop.serving._fast_routes import FastRoutes
from mloop.serving._flow import PredictionSink, ServingContext
from mloop.serving._http import RequestContext, install_error_handlers
from mloop.serving._limits import LocalRateLimiter, RateLimiter, RedisRateLimiter
from mloop.serving._local_only import LocalOnly
from mloop.serving._routes import records_router
from mloop.serving._routing import TrafficRouter
from mloop.serving._stats import ServingStats
from mloop.serving._tracing import PredictionTracer
from mloop.serving._v2_routes import v2_router

if TYPE_CHECKING:
    from mloop.registry import Registry

__all__ = ["create_app"]


def _limiter(settings: Settings) -> RateLimiter | None:
    cfg = settings.serving
    if cfg.rate_limit_per_s <= 0:
        return None
    burst = cfg.rate_limit_burst or cfg.rate_limit_per_s
    if settings.redis_url:
        return RedisRateLimiter(settings.redis_url, cfg.rate_limit_per_s, burst)
    return LocalRateLimiter(cfg.rate_limit_per_s, burst)


def create_app(
    settings: Settings,
    *,
    registry: Registry | None = None,
    prediction_sink: PredictionSink | None = None,
    router: TrafficRouter | None = None,
    refs: Iterable[str] = (),
    pinned: Iterable[str] = (),
    auth: bool | None = None,
    stats: ServingStats | None = None,
    routers: Sequence[tuple[APIRouter, Scope]] = (),
    entity_key: str | None = None,
) -> FastAPI:
    """The serving app: records API, v2 protocol, WebSocket feed, metrics, docs.

    ``refs`` limits what is served (default: every model with a ``production`` alias);
    ``router`` replaces the default alias router (rollouts); ``auth`` overrides
    ``settings.serving.auth``; ``routers`` are extra routers mounted behind a scope
    (e.g. monitoring's feedback routes with ``Scope.FEEDBACK``).
    """
    if registry is None:
        from mloop.registry import Registry

        registry = Registry(settings)
    required = (
        auth if auth is not None else auth_required(settings.serving.auth, settings.serving.host)
    )
    keys = KeyStore(registry.store) if required else None
    engine = Engine(settings, registry, router=router, refs=refs, pinned=pinned, stats=stats)
    ctx = ServingContext(
        settings=settings,
        engine=engine,
        guard=Guard(keys, required=required),
        limiter=_limiter(settings),
        sink=prediction_sink,
        entity_key=entity_key,
        tracer=PredictionTracer.from_settings(settings),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await engine.start()
        try:
            yield
        finally:
            await engine.stop()
            closer = getattr(ctx.limiter, "aclose", None)
            if closer is not None:
                await closer()

    otel = settings.serving.otel
    app = FastAPI(
        title="mloop serving",
        description="Predictions over the records API and the Open Inference Protocol (v2).",
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry looks up three global providers on every
        # request (~30 us) even when none is configured; mloop exports Prometheus.
        telemetry={"tracing": otel, "metrics": otel, "logs": otel},
    )
    app.state.serving = ctx

    def on_error(exc: MloopError) -> None:
        engine.metrics.errors.labels(exc.type, exc.code).inc()

    def known_models() -> list[str] | None:
        # An unknown URL needs no key: with keys required it must not list the models.
        return None if required else sorted(engine.router.versions_in_use())

    install_error_handlers(app, on_error, known_models)
    app.include_router(records_router(ctx))
    app.include_router(v2_router(ctx))
    for extra, scope in routers:
        app.include_router(extra, dependencies=[Depends(_scope_dependency(ctx, scope))])
    if settings.serving.fast_routes:
        app.add_middleware(FastRoutes, ctx=ctx, on_error=on_error)  # inside RequestContext
    allowed = [h.strip() for h in settings.serving.allowed_hosts.split(",") if h.strip()]
    app.add_middleware(
        RequestContext,
        max_body_bytes=settings.serving.max_body_bytes,
        access_log=settings.serving.access_log,
        on_error=on_error,
        local_only=None if required else LocalOnly(allowed),
    )
    return app


def _scope_dependency(ctx: ServingContext, scope: Scope) -> Any:
    async def check(request: Request) -> None:
        await ctx.authorize(request.headers, scope, request.scope["state"])

    return check

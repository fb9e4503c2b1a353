"""Running the app: ``serve`` (the ``mloop serve`` command) and ``run_in_background``.

Serving workers pin OpenMP/BLAS to one thread (a small model spends several times
more CPU per request otherwise) and run uvicorn with uvloop and httptools. Several
workers each bind the port with ``SO_REUSEPORT`` so the kernel spreads connections.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import structlog

from mloop.auth import auth_required, is_loopback
from mloop.config import Settings
from mloop.errors import ConfigurationError

__all__ = ["ServerHandle", "banner", "pin_threads", "run_in_background", "serve"]

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def pin_threads() -> None:
    """Limit OpenMP/BLAS pools to one thread in this process (env for children, live limits)."""
    for var in _THREAD_VARS:
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        pass


def configure_logging(level: str = "INFO") -> None:
    """JSON log lines (structlog) on stdout."""
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        logger_factory=structlog.BytesLoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level.upper(), format="%(message)s")


def _socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"Cannot listen on {host}:{port}: {exc.strerror}. Pick another --port."
        ) from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _uvicorn_config(app: Any, settings: Settings) -> Any:
    import uvicorn

    from mloop._connections import GRACEFUL_SHUTDOWN_S, ConnectionLimits, guarded_protocol

    cfg = settings.serving
    limits = ConnectionLimits(
        header_timeout_s=cfg.header_timeout_s,
        body_timeout_s=cfg.body_timeout_s,
        max_per_client=cfg.max_connections_per_client,
    )
    return uvicorn.Config(
        app,
        loop="uvloop",
        http=guarded_protocol(limits),
        ws="websockets-sansio",
        lifespan="on",
        log_level="warning",
        access_log=False,  # mloop writes its own structured access log
        timeout_keep_alive=30,
        timeout_graceful_shutdown=max(GRACEFUL_SHUTDOWN_S, math.ceil(cfg.request_timeout_s)),
        backlog=2048,
    )


def banner(settings: Settings, url: str, workers: int) -> str:
    """One line saying where the server listens and whether keys are required."""
    cfg = settings.serving
    if auth_required(cfg.auth, cfg.host):
        auth = "API keys required"
    elif is_loopback(cfg.host):
        auth = "OPEN (no API key needed: listening on loopback only)"
    else:
        auth = "OPEN (auth=off: anyone who can reach this port can predict)"
    return f"mloop serving on {url} with {workers} worker(s); auth: {auth}; docs: {url}/docs"


@dataclass
class ServerHandle:
    """A server running in a background thread: its ``url``, ``app`` and ``stop()``."""

    url: str
    server: Any = field(repr=False)
    thread: threading.Thread = field(repr=False)
    app: Any = field(default=None, repr=False)  # the ASGI app (``app.state.stack``: full stack)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to finish requests in flight and exit; wait for it."""
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def run_in_background(
    settings: Settings,
    *,
    host: str | None = None,
    port: int = 0,
    ready_timeout_s: float = 60.0,
    bare: bool = False,
    **app_kwargs: Any,
) -> ServerHandle:
    """Start the server in a daemon thread and return once it is ready (``port=0``: any free).

    The full stack (``build_app``: monitoring, rollouts, alerts, triggers) unless
    ``bare``, which serves ``create_app`` alone.
    """
    import uvicorn

    from mloop.server._stack import build_app
    from mloop.serving import create_app

    host = host or settings.serving.host
    settings = replace(settings, serving=replace(settings.serving, host=host))
    sock = _socket(host, port)
    bound = sock.getsockname()[1]
    try:
        app = create_app(settings, **app_kwargs) if bare else build_app(settings, **app_kwargs)
    except BaseException:
        sock.close()
        raise
    server = uvicorn.Server(_uvicorn_config(app, settings))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="mloop-serve", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + ready_timeout_s
    while not server.started:
        if not thread.is_alive():
            raise ConfigurationError(
                "The server stopped during start-up; see the log above for the cause."
            )
        if time.monotonic() > deadline:
            server.should_exit = True
            raise ConfigurationError(f"The server was not ready within {ready_timeout_s:g} s.")
        time.sleep(0.02)
    shown = f"[{host}]" if ":" in host else host
    return ServerHandle(f"http://{shown}:{bound}", server, thread, app)


def _freeze_after_startup(app: Any) -> None:
    """``gc.freeze()`` once the app has started: libraries and loaded models leave the heap
    the collector walks, so a full collection under load no longer stalls every request."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(application: Any) -> Any:
        async with inner(application) as state:
            gc.collect()
            gc.freeze()
            yield state

    app.router.lifespan_context = lifespan


def _worker(settings: Settings, refs: tuple[str, ...], reuse_port: bool) -> None:
    pin_threads()
    configure_logging(settings.log_level)
    import uvicorn

    from mloop.server._stack import build_app

    cfg = settings.serving
    sock = _socket(cfg.host, cfg.port, reuse_port=reuse_port)
    app = build_app(settings, refs)
    _freeze_after_startup(app)
    uvicorn.Server(_uvicorn_config(app, settings)).run(sockets=[sock])


def serve(settings: Settings, refs: Iterable[str] = (), *, workers: int | None = None) -> None:
    """Serve until interrupted (``mloop serve``); ``workers`` processes share the port."""
    pin_threads()
    cfg = settings.serving
    workers = max(1, workers or cfg.workers)
    refs = tuple(refs)
    shown = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    print(banner(settings, f"http://{shown}:{cfg.port}", workers), file=sys.stderr, flush=True)
    if workers == 1:
        _worker(settings, refs, reuse_port=False)
        return
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_worker, args=(settings, refs, True), name=f"mloop-worker-{i}")
        for i in range(workers)
    ]
    for p in procs:
        p.start()

    def stop(_signum: int, _frame: Any) -> None:
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for p in procs:
        p.join()

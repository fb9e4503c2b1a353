"""``Client``: the gateway's scheduling, fallback and limits in-process, without a proxy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from mloop._clock import Clock
from mloop.gateway._config import GatewayConfig, load_config
from mloop.gateway._gateway import ChatResult, Gateway
from mloop.gateway._limiter import Limiter

__all__ = ["Client"]


class Client:
    """Call routes in-process with the same behaviour as the gateway server (async)."""

    def __init__(
        self,
        config: GatewayConfig | str | Path,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        limiter: Limiter | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(config, GatewayConfig):
            config = load_config(config)
        self.gateway = Gateway(config, transport=transport, clock=clock, limiter=limiter, env=env)

    async def chat(
        self,
        route: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        priority: str = "interactive",
        deadline_ms: float | None = None,
        **params: Any,
    ) -> ChatResult:
        """Answer ``messages`` on ``route``; ``params`` go to the provider (max_tokens…)."""
        body = {**params, "model": route, "messages": list(messages)}
        deadline = None if deadline_ms is None else deadline_ms / 1000.0
        return await self.gateway.chat(body, priority=priority, deadline_s=deadline)

    async def stream(
        self,
        route: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        priority: str = "interactive",
        deadline_ms: float | None = None,
        **params: Any,
    ) -> AsyncIterator[dict[str, Any]]:
        """Stream OpenAI ``chat.completion.chunk`` dicts for ``messages`` on ``route``."""
        body = {**params, "model": route, "messages": list(messages), "stream": True}
        deadline = None if deadline_ms is None else deadline_ms / 1000.0
        started = await self.gateway.stream(body, priority=priority, deadline_s=deadline)
        async for chunk in started.chunks:
            yield chunk

    async def aclose(self) -> None:
        """Stop the scheduler and close connections."""
        await self.gateway.aclose()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

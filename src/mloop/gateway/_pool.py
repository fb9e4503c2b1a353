"""Outgoing HTTP connections for one deployment, in small shards.

httpcore's connection pool does O(connections^2) work each time a request
starts or ends, which costs milliseconds of CPU per call once a deployment has
dozens of connections open. Several small pools, each request sent through the
least busy one, keep that work constant while allowing as many connections.
"""

from __future__ import annotations

import httpx

__all__ = ["ShardedClient"]

_SHARD = 8  # connections per shard


class ShardedClient:
    """``send`` through the least busy of a few small httpx pools."""

    def __init__(
        self,
        max_connections: int,
        timeout: httpx.Timeout,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        shards = max(1, -(-max_connections // _SHARD))
        limits = httpx.Limits(max_connections=_SHARD, max_keepalive_connections=_SHARD)
        self._clients = [
            httpx.AsyncClient(transport=transport, timeout=timeout, limits=limits)
            for _ in range(shards)
        ]
        self._busy = [0] * shards

    async def send(
        self, request: httpx.Request, *, stream: bool = False
    ) -> tuple[httpx.Response, int]:
        """Send ``request``; returns the response and the shard to ``done`` when finished."""
        shard = min(range(len(self._busy)), key=self._busy.__getitem__)
        self._busy[shard] += 1
        try:
            return await self._clients[shard].send(request, stream=stream), shard
        except BaseException:
            self._busy[shard] -= 1
            raise

    def done(self, shard: int) -> None:
        """The response from ``shard`` was read and closed."""
        self._busy[shard] = max(0, self._busy[shard] - 1)

    async def aclose(self) -> None:
        """Close every shard."""
        for client in self._clients:
            await client.aclose()

"""The response cache and quota limiter a gateway config asks for."""

from __future__ import annotations

from mloop._clock import Clock
from mloop.errors import ConfigurationError
from mloop.gateway._cache import MemoryCache, RedisCache, ResponseCache
from mloop.gateway._config import GatewayConfig
from mloop.gateway._limiter import Limiter, LocalLimiter

__all__ = ["default_cache", "default_limiter"]


def default_cache(config: GatewayConfig, clock: Clock) -> ResponseCache | None:
    """The ``[cache]`` section's cache: in memory, in Redis, or none."""
    if config.cache_backend == "memory":
        return MemoryCache(
            ttl_s=config.cache_ttl_s, max_entries=config.cache_max_entries, clock=clock
        )
    if config.cache_backend == "redis":
        if not config.redis_url:
            raise ConfigurationError(
                "[cache] backend = 'redis' needs a Redis URL: set [scheduler] redis_url or "
                "MLOOP_REDIS_URL."
            )
        return RedisCache(config.redis_url, prefix=config.key_prefix, ttl_s=config.cache_ttl_s)
    return None


def default_limiter(config: GatewayConfig, clock: Clock) -> Limiter:
    """Quotas in Redis when a Redis URL is configured (several replicas), else in-process."""
    if config.redis_url:
        from mloop.gateway._redis_limiter import RedisLimiter

        return RedisLimiter(config.deployments, config.redis_url, prefix=config.key_prefix)
    return LocalLimiter(config.deployments, clock.monotonic())

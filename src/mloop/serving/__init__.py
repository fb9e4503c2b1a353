"""Online serving: records API and Open Inference Protocol, model pool, micro-batching, cache."""

from mloop.serving._app import create_app
from mloop.serving._batcher import Batcher, Priority
from mloop.serving._cache import LocalCache, PredictionCache, RedisCache, cache_key
from mloop.serving._flow import PredictionSink
from mloop.serving._limits import LocalRateLimiter, RateLimiter, RedisRateLimiter
from mloop.serving._pool import ModelPool, PoolStats
from mloop.serving._routing import AliasRouter, RouteDecision, TrafficRouter
from mloop.serving._server import ServerHandle, run_in_background, serve
from mloop.serving._stack import Stack, build_app
from mloop.serving._stats import ServingStats

__all__ = [
    "AliasRouter",
    "Batcher",
    "LocalCache",
    "LocalRateLimiter",
    "ModelPool",
    "PoolStats",
    "PredictionCache",
    "PredictionSink",
    "Priority",
    "RateLimiter",
    "RedisCache",
    "RedisRateLimiter",
    "RouteDecision",
    "ServerHandle",
    "ServingStats",
    "Stack",
    "TrafficRouter",
    "build_app",
    "cache_key",
    "create_app",
    "run_in_background",
    "serve",
]

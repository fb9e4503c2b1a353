"""Online serving, the stage of the loop that answers requests.

The ASGI app (``create_app``: records API, Open Inference Protocol v2, WebSocket
feed, ``/metrics``), the model pool, the micro-batcher, the prediction cache and
admission control. What it plugs in (where predictions are logged, who routes
traffic) are Protocols; ``mloop.server`` assembles the running system around it.
"""

from mloop.serving._app import create_app
from mloop.serving._batcher import Batcher, Priority
from mloop.serving._cache import LocalCache, PredictionCache, RedisCache, cache_key
from mloop.serving._flow import PredictionSink
from mloop.serving._limits import LocalRateLimiter, RateLimiter, RedisRateLimiter
from mloop.serving._pool import ModelPool, PoolStats
from mloop.serving._routing import AliasRouter, RouteDecision, TrafficRouter
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
    "ServingStats",
    "TrafficRouter",
    "cache_key",
    "create_app",
]

"""Prometheus metrics of one gateway, in its own registry (never the global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["GatewayMetrics"]

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)


class GatewayMetrics:
    """Counters, gauges and histograms the gateway updates as it works."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.calls = Counter(
            "mloop_gateway_calls",
            "Calls sent to providers, by outcome.",
            ["deployment", "outcome"],
            registry=r,
        )
        self.provider_429 = Counter(
            "mloop_gateway_provider_429",
            "HTTP 429 answers received from providers.",
            ["deployment"],
            registry=r,
        )
        self.latency = Histogram(
            "mloop_gateway_call_latency_seconds",
            "Provider call latency.",
            ["deployment"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "mloop_gateway_tokens",
            "Tokens used, by kind (prompt, completion).",
            ["deployment", "kind"],
            registry=r,
        )
        self.cost = Counter(
            "mloop_gateway_cost",
            "Cost of provider calls (configured currency).",
            ["deployment"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "mloop_gateway_queue_depth",
            "Requests waiting for quota.",
            ["priority"],
            registry=r,
        )
        self.queue_wait = Histogram(
            "mloop_gateway_queue_wait_seconds",
            "Time requests waited for quota.",
            ["priority"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "mloop_gateway_requests",
            "Client requests, by route, priority and outcome.",
            ["route", "priority", "outcome"],
            registry=r,
        )
        self.fallbacks = Counter(
            "mloop_gateway_fallbacks",
            "Requests served by a deployment other than the primary.",
            ["route", "deployment"],
            registry=r,
        )

        self.spend = Counter(
            "mloop_gateway_spend_usd",
            "USD spent at providers, by API key, team, route and deployment.",
            ["key", "team", "route", "deployment"],
            registry=r,
        )
        self.budget_refusals = Counter(
            "mloop_gateway_budget_refusals",
            "Requests refused (429) by a key's or team's budget or RPM/TPM cap.",
            ["subject", "budget"],
            registry=r,
        )
        self.ledger_errors = Counter(
            "mloop_gateway_ledger_errors",
            "Spend-ledger operations that failed (database or Redis unreachable).",
            ["operation"],
            registry=r,
        )
        self.cache = Counter(
            "mloop_gateway_cache",
            "Response-cache lookups, by route and result (hit, miss).",
            ["route", "result"],
            registry=r,
        )

    @staticmethod
    def values(metric: Counter | Gauge) -> dict[tuple[str, ...], float]:
        """A counter's or gauge's current value per label tuple (what ``/metrics`` shows)."""
        return _values(metric)

    def render(self) -> bytes:
        """The text exposition format for ``/metrics``."""
        return generate_latest(self.registry)


def _values(metric: Counter | Gauge) -> dict[tuple[str, ...], float]:
    out: dict[tuple[str, ...], float] = {}
    for family in metric.collect():
        wanted = (family.name, family.name + "_total")  # a counter's value is its _total
        for sample in family.samples:
            if sample.name in wanted:
                out[tuple(sample.labels.values())] = sample.value  # in label order
    return out

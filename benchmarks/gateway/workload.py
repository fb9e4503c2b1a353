"""The benchmark's scenario: two deployments' quotas, a bursty seeded two-priority workload.

Standard library only: the peer clients import it from their own venv.

Time scale: the scenario is written for 90 s at per-minute limits; ``SCALE``
compresses it into 90/SCALE s of wall time by multiplying every rate (RPM, TPM,
concurrency, arrival rate) by SCALE and keeping latencies as they are. Limits
stay per real minute, so every client (LiteLLM's per-minute counters included)
sees honest units; it is simply a busier deployment for a shorter time.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass
from typing import Any

SCALE = 3.0
DURATION_S = 90.0

# Per-minute quotas before scaling; burst_s: the provider lets 10 s of quota through at once.
DEPLOYMENTS: dict[str, dict[str, float]] = {
    "big": {
        "rpm": 300,
        "tpm": 120_000,
        "max_concurrency": 20,
        "latency_s": 0.5,
        "latency_sigma": 0.25,
        "burst_s": 10,
    },
    "small": {
        "rpm": 900,
        "tpm": 360_000,
        "max_concurrency": 40,
        "latency_s": 0.3,
        "latency_sigma": 0.25,
        "burst_s": 10,
    },
}


def provider_models(
    scale: float = SCALE, fault: bool = False, window_s: float = 60.0
) -> dict[str, dict[str, Any]]:
    """Mock provider models at the given time scale (``fault``: big fails 503 for a while).

    ``window_s`` is the window the provider counts its limits in and reports in its
    ``x-ratelimit-limit-*`` headers (the rates are the same; only the convention
    differs); clients are always configured per minute, the true wall-clock limits.
    """
    per_window = window_s / 60.0
    out: dict[str, dict[str, Any]] = {}
    for name, d in DEPLOYMENTS.items():
        out[name] = {
            "rpm": int(d["rpm"] * scale * per_window),
            "tpm": int(d["tpm"] * scale * per_window),
            "window_s": window_s,
            "max_concurrency": int(d["max_concurrency"] * scale),
            "latency_s": d["latency_s"],
            "latency_sigma": d["latency_sigma"],
            "burst_s": d["burst_s"] / scale,
        }
    return out


@dataclass(frozen=True)
class Request:
    """One request of the workload."""

    t: float
    priority: str
    prompt: str
    max_tokens: int


def make_workload(seed: int = 7, scale: float = SCALE) -> list[Request]:
    """Interactive Poisson traffic plus three batch bursts far above the primary's limits."""
    rng = random.Random(seed)
    out: list[Request] = []

    def prompt() -> str:
        words = rng.randint(40, 200)
        return " ".join(
            rng.choice(["alpha", "beta", "gamma", "delta", "omega"]) for _ in range(words)
        )

    t = 0.0
    while True:  # interactive: 4 requests per second
        t += rng.expovariate(4.0)
        if t >= DURATION_S:
            break
        out.append(Request(t, "interactive", prompt(), rng.randint(50, 150)))
    for start in (10.0, 40.0, 70.0):  # batch: ~330 requests within 2 s, three times
        for _ in range(330):
            out.append(Request(start + rng.uniform(0, 2), "batch", prompt(), rng.randint(100, 300)))
    out.sort(key=lambda r: r.t)
    return [Request(r.t / scale, r.priority, r.prompt, r.max_tokens) for r in out]


def tokens_of(req: Request) -> int:
    """What the mock provider charges for a request (see mloop.gateway.testing.mock_tokens)."""
    return 3 + 5 + len(req.prompt) // 3 + req.max_tokens


def optimum(workload: list[Request], scale: float = SCALE) -> dict[str, Any]:
    """The analytic optimum: a fluid scheduler with perfect knowledge of both quotas.

    Requests are served in priority order (interactive first) on whichever
    deployment has request and token quota, with the deployment's median latency
    and no rejections. Returns how many complete and the latency percentiles.
    """
    models = provider_models(scale)
    state = {}
    for name, m in models.items():
        cap_r = m["rpm"] * m["burst_s"] / 60
        cap_t = m["tpm"] * m["burst_s"] / 60
        state[name] = {
            "r": cap_r,
            "t": cap_t,
            "cap_r": cap_r,
            "cap_t": cap_t,
            "rate_r": m["rpm"] / 60,
            "rate_t": m["tpm"] / 60,
            "lat": m["latency_s"],
        }
    step = 0.01
    now = 0.0
    queues: dict[str, list[Request]] = {"interactive": [], "batch": []}
    heads = {"interactive": 0, "batch": 0}
    arrivals = sorted(workload, key=lambda r: r.t)
    i = 0
    latencies: dict[str, list[float]] = {"interactive": [], "batch": []}
    horizon = workload[-1].t + 120.0
    while now < horizon:
        while i < len(arrivals) and arrivals[i].t <= now:
            queues[arrivals[i].priority].append(arrivals[i])
            i += 1
        for s in state.values():
            s["r"] = min(s["cap_r"], s["r"] + s["rate_r"] * step)
            s["t"] = min(s["cap_t"], s["t"] + s["rate_t"] * step)
        for prio in ("interactive", "batch"):
            q = queues[prio]
            while heads[prio] < len(q):
                req = q[heads[prio]]
                cost = tokens_of(req)
                for s in state.values():
                    if s["r"] >= 1 and s["t"] >= cost:
                        s["r"] -= 1
                        s["t"] -= cost
                        latencies[prio].append(now - req.t + s["lat"])
                        heads[prio] += 1
                        break
                else:
                    break
            if heads[prio] < len(q):
                break  # strict priority: batch waits while interactive work waits
        if i == len(arrivals) and all(heads[p] == len(queues[p]) for p in queues):
            break
        now += step
    return {
        "completed": sum(len(v) for v in latencies.values()),
        "makespan_s": now,
        "p99": {k: percentile(v, 99) for k, v in latencies.items()},
    }


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[k]


def dump(workload: list[Request]) -> str:
    """JSON text of a workload."""
    return json.dumps([asdict(r) for r in workload])


def load(text: str) -> list[Request]:
    """A workload from ``dump``'s JSON."""
    return [Request(**item) for item in json.loads(text)]

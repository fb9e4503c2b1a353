"""Cost of routing one request: precomputed table lookup vs. the per-request budget.

Run: .venv/bin/python benchmarks/rollout/bench_router.py
"""

from __future__ import annotations

import timeit

from mloop.rollout import RolloutState, RoutingTable


def _state(strategy: str, weight: float) -> RolloutState:
    return RolloutState(
        id="0123456789abcdef0123456789abcdef",
        model="churn",
        stable=3,
        candidate=4,
        strategy=strategy,  # type: ignore[arg-type]
        started_at=0.0,
        step_started_at=0.0,
        updated_at=0.0,
        phase="running",
        step=0,
        weight=weight,
    )


def main() -> None:
    ready = {("churn", 3), ("churn", 4)}

    def is_ready(model: str, version: int) -> bool:
        return (model, version) in ready

    cases = {
        "production only": RoutingTable({"churn": 3}),
        "canary 25%, sticky key": RoutingTable(
            {"churn": 3}, [_state("canary", 25)], is_ready=is_ready
        ),
        "a/b 50%, sticky key": RoutingTable({"churn": 3}, [_state("ab", 50)], is_ready=is_ready),
        "shadow": RoutingTable({"churn": 3}, [_state("shadow", 0)], is_ready=is_ready),
    }
    n = 200_000
    print(f"{'case':28} {'ns/route':>10}")
    for name, table in cases.items():
        keys = [f"user-{i}" for i in range(1000)]
        it = iter(keys * (n // 1000 + 1))
        seconds = min(
            timeit.repeat(
                lambda t=table, it=it: t.route("churn", next(it)), number=n // 5, repeat=3
            )
        )
        print(f"{name:28} {seconds / (n // 5) * 1e9:10.0f}")


if __name__ == "__main__":
    main()

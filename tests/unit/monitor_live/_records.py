"""Prediction records shaped like the ones serving hands the log."""

from __future__ import annotations

from typing import Any


def record(
    i: int, *, model: str = "churn", ts: float = 1_700_000_000.0, rows: int = 1
) -> dict[str, Any]:
    """A classifier record with ``rows`` rows."""
    return {
        "request_id": f"req-{i}",
        "ts": ts,
        "model": model,
        "version": 1,
        "inputs": [{"x": float(i + r), "c": "a" if (i + r) % 2 else "b"} for r in range(rows)],
        "outputs": [
            {"label": "yes" if (i + r) % 3 else "no", "probabilities": {"no": 0.3, "yes": 0.7}}
            for r in range(rows)
        ],
        "latency_ms": 1.5,
        "entity_keys": [f"cust-{i}-{r}" for r in range(rows)],
    }

"""The champion/challenger gate: both scored on the freshest holdout, then pure checks.

The holdout is carved from the most recent rows by time (never a stale test set). The
challenger must beat the champion by a margin on the chosen metric, not regress on any
slice by more than a tolerance, stay within latency and size budgets, and meet the
business go/no-go thresholds.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mloop.errors import InvalidInput
from mloop.pipelines._checks import Check, Report
from mloop.pipelines._metrics import HIGHER_IS_BETTER, score
from mloop.types import Predictions

__all__ = ["GateConfig", "SliceScore", "gate_decision", "slice_scores", "time_holdout"]

_REQUIRE_RE = re.compile(r"^\s*(<=|>=|<|>)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class GateConfig:
    """What a challenger must achieve against the champion to be rolled out."""

    metric: str | None = None  # default: accuracy (classification) or rmse (regression)
    min_improvement: float = 0.01  # in metric units, in the metric's "better" direction
    slices: tuple[str, ...] = ()  # columns whose values define slices
    slice_tolerance: float = 0.02  # allowed regression per slice
    min_slice_rows: int = 20
    max_latency_p95_ms: float | None = None  # single-row predict
    max_size_bytes: int | None = None
    require: Mapping[str, str] = field(default_factory=dict)  # {"accuracy": ">=0.9"}
    holdout_fraction: float = 0.25
    min_holdout_rows: int = 30
    latency_rows: int = 50

    def __post_init__(self) -> None:
        if self.metric is not None and self.metric not in HIGHER_IS_BETTER:
            raise InvalidInput(
                f"Gate metric {self.metric!r} is unknown; use one of {sorted(HIGHER_IS_BETTER)}."
            )
        if not 0 < self.holdout_fraction < 1:
            raise InvalidInput(f"holdout_fraction {self.holdout_fraction!r} must be in (0, 1).")
        for name, rule in self.require.items():
            if _REQUIRE_RE.match(str(rule)) is None:
                raise InvalidInput(
                    f"Business threshold {name}={rule!r} is not understood; write e.g. '>=0.9'."
                )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateConfig:
        """Build from a ``[pipelines.gate]`` table."""
        values = dict(data)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise InvalidInput(
                f"Unknown gate setting(s) {sorted(unknown)}; known: {sorted(known)}."
            )
        if "slices" in values:
            values["slices"] = tuple(values["slices"])
        return cls(**values)

    def metric_for(self, task: str) -> str:
        """The metric the gate compares for ``task``."""
        return self.metric or ("accuracy" if task == "classification" else "rmse")


@dataclass(frozen=True)
class SliceScore:
    """The chosen metric of both models on one slice of the holdout."""

    column: str
    value: str
    rows: int
    challenger: float
    champion: float


def time_holdout(
    frame: pd.DataFrame, time_column: str | None, fraction: float, min_rows: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout): the holdout is the most recent ``fraction`` of rows (stable order)."""
    ordered = frame
    if time_column is not None:
        ordered = frame.sort_values(time_column, kind="stable")
    n = len(ordered)
    size = max(math.ceil(n * fraction), min_rows)
    if size >= n:
        raise InvalidInput(
            f"Only {n} rows: cannot carve a holdout of {size} rows and still train. "
            "Widen the pipeline's window or lower gate.min_holdout_rows."
        )
    return ordered.iloc[: n - size], ordered.iloc[n - size :]


def slice_scores(
    holdout: pd.DataFrame,
    target: str,
    columns: Sequence[str],
    metric: str,
    challenger: Predictions,
    champion: Predictions,
    min_rows: int,
) -> list[SliceScore]:
    """The metric per value of each slice column (slices smaller than ``min_rows`` skipped)."""
    out: list[SliceScore] = []
    y = holdout[target].to_numpy(dtype=object)
    for column in columns:
        if column not in holdout.columns:
            raise InvalidInput(
                f"Gate slice column {column!r} is not in the data; columns: {list(holdout.columns)}."
            )
        values = holdout[column].astype(str).to_numpy()
        for value in sorted(set(values.tolist())):
            idx = np.flatnonzero(values == value)
            if idx.size < min_rows:
                continue
            a = score(challenger.rows(idx), y[idx])
            b = score(champion.rows(idx), y[idx])
            if metric in a and metric in b:
                out.append(SliceScore(column, value, int(idx.size), a[metric], b[metric]))
    return out


def _better(metric: str, challenger: float, champion: float) -> float:
    """How much better the challenger is (positive = better), in metric units."""
    return challenger - champion if HIGHER_IS_BETTER[metric] else champion - challenger


def _holds(rule: str, value: float) -> tuple[bool, float]:
    match = _REQUIRE_RE.match(rule)
    assert match is not None
    op, number = match.group(1), float(match.group(2))
    ok = {"<": value < number, "<=": value <= number, ">": value > number, ">=": value >= number}
    return ok[op], number


def gate_decision(
    config: GateConfig,
    *,
    task: str,
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    slices: Sequence[SliceScore] = (),
    latency_p95_ms: float | None = None,
    size_bytes: int | None = None,
) -> Report:
    """Every gate check from measured numbers (pure)."""
    metric = config.metric_for(task)
    checks: list[Check] = []
    value = challenger.get(metric)
    if value is None:
        checks.append(
            Check(metric, False, None, None, f"the challenger has no {metric} on the holdout")
        )
    elif champion is None or metric not in champion:
        checks.append(
            Check(
                "beats_champion",
                True,
                value,
                None,
                f"no champion to beat; challenger {metric}={value:.4g}",
            )
        )
    else:
        gain = _better(metric, value, champion[metric])
        checks.append(
            Check(
                "beats_champion",
                gain >= config.min_improvement,
                gain,
                config.min_improvement,
                f"challenger {metric}={value:.4g} vs champion {champion[metric]:.4g} "
                f"(improvement {gain:+.4g}, need {config.min_improvement:+.4g})",
            )
        )
    for s in slices:
        drop = -_better(metric, s.challenger, s.champion)
        checks.append(
            Check(
                f"slice:{s.column}={s.value}",
                drop <= config.slice_tolerance,
                drop,
                config.slice_tolerance,
                f"{metric} {s.challenger:.4g} vs champion {s.champion:.4g} on {s.rows} rows "
                f"(regression {drop:+.4g}, tolerance {config.slice_tolerance:g})",
            )
        )
    if config.max_latency_p95_ms is not None:
        ok = latency_p95_ms is not None and latency_p95_ms <= config.max_latency_p95_ms
        shown = "not measured" if latency_p95_ms is None else f"{latency_p95_ms:.2f} ms"
        checks.append(
            Check(
                "latency_p95_ms",
                ok,
                latency_p95_ms,
                config.max_latency_p95_ms,
                f"single-row predict p95 {shown} (budget {config.max_latency_p95_ms:g} ms)",
            )
        )
    if config.max_size_bytes is not None:
        ok = size_bytes is not None and size_bytes <= config.max_size_bytes
        checks.append(
            Check(
                "size_bytes",
                ok,
                None if size_bytes is None else float(size_bytes),
                float(config.max_size_bytes),
                f"serialized model {size_bytes} bytes (budget {config.max_size_bytes})",
            )
        )
    for name, rule in sorted(config.require.items()):
        got = challenger.get(name)
        if got is None:
            checks.append(
                Check(f"require:{name}", False, None, None, f"no metric {name!r} measured")
            )
            continue
        ok, number = _holds(str(rule), got)
        checks.append(
            Check(
                f"require:{name}", ok, got, number, f"{name}={got:.4g}, business rule {name}{rule}"
            )
        )
    metrics = {
        "metric": metric,
        "challenger": dict(challenger),
        "champion": None if champion is None else dict(champion),
        "latency_p95_ms": latency_p95_ms,
        "size_bytes": size_bytes,
    }
    return Report("gate", tuple(checks), metrics)

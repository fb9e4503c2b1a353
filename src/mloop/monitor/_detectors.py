"""Drift detectors: one method, ``update(window) -> self``, then read ``drift_detected``.

The protocol is River's: a detector consumes one observation at a time (a window of
rows, a window's counts, or one metric value) and says whether drift was detected.
Write your own by providing the same two members.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol, Self, runtime_checkable

import pandas as pd

from mloop.contracts import Profile
from mloop.errors import InvalidInput
from mloop.monitor._counting import WindowCounts
from mloop.monitor._drift import DriftReport, drift_from_counts
from mloop.monitor._reference import Reference, as_reference

__all__ = ["BinnedDriftDetector", "Detector", "PageHinkley"]


@runtime_checkable
class Detector(Protocol):
    """Anything with ``update(observation) -> self`` and a ``drift_detected`` flag."""

    drift_detected: bool

    def update(self, observation: Any) -> Self:
        """Consume one observation and refresh ``drift_detected``."""
        ...


class BinnedDriftDetector:
    """Per-column binned drift of each window against a fixed reference (``drift`` verdicts)."""

    def __init__(
        self,
        reference: Profile | pd.DataFrame | Reference,
        *,
        columns: Sequence[str] | None = None,
        method: str | Mapping[str, str] = "auto",
        alpha: float = 0.05,
        min_effect: float | Mapping[str, float] | None = None,
        drift_share: float = 0.0,
    ) -> None:
        self.reference = reference
        self.columns = columns
        self.method = method
        self.alpha = alpha
        self.min_effect = min_effect
        self.drift_share = drift_share
        self.drift_detected = False
        self.report_: DriftReport | None = None
        self.n_windows_ = 0
        self._reference: Reference | None = None

    def update(self, observation: pd.DataFrame | WindowCounts) -> Self:
        """Judge one window (raw rows or counts on this reference's bins)."""
        if self._reference is None:
            ref = as_reference(self.reference)
            self._reference = ref.select(list(self.columns)) if self.columns else ref
        if isinstance(observation, WindowCounts):
            counts = observation
        elif isinstance(observation, pd.DataFrame):
            counts = WindowCounts(self._reference).update(observation)
        else:
            raise InvalidInput(
                f"BinnedDriftDetector.update takes a DataFrame or WindowCounts, "
                f"not {type(observation).__name__}."
            )
        wanted = {name: counts.counts[name] for name in self._reference if name in counts.counts}
        self.report_ = drift_from_counts(
            self._reference,
            wanted,
            alpha=self.alpha,
            method=self.method,
            min_effect=self.min_effect,
            drift_share=self.drift_share,
        )
        self.drift_detected = self.report_.dataset_drift
        self.n_windows_ += 1
        return self


class PageHinkley:
    """Page-Hinkley test for a change in the mean of a stream of numbers (e.g. a metric).

    Accumulates deviations from the running mean beyond a tolerance ``delta``; drift
    when the accumulated sum rises more than ``threshold`` above its minimum (mode
    "up"), falls below its maximum (mode "down"), or either ("both"). Resets after a
    detection, as River's detector does.
    """

    def __init__(
        self,
        *,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 1.0 - 1e-4,
        mode: Literal["up", "down", "both"] = "both",
    ) -> None:
        if mode not in ("up", "down", "both"):
            raise InvalidInput(f"mode must be 'up', 'down' or 'both'; got {mode!r}.")
        self.min_instances = min_instances
        self.delta = delta
        self.threshold = threshold
        self.alpha = alpha
        self.mode = mode
        self.drift_detected = False
        self._reset()

    def _reset(self) -> None:
        self.n_ = 0
        self.mean_ = 0.0
        self._up = 0.0
        self._up_min = math.inf
        self._down = 0.0
        self._down_min = math.inf

    def update(self, observation: float) -> Self:
        """Add one value; ``drift_detected`` is True on the value that completes a change."""
        if self.drift_detected:
            self._reset()
        x = float(observation)
        if math.isnan(x):
            self.drift_detected = False
            return self
        self.n_ += 1
        self.mean_ += (x - self.mean_) / self.n_
        self._up = self.alpha * self._up + (x - self.mean_ - self.delta)
        self._down = self.alpha * self._down + (self.mean_ - x - self.delta)
        self._up_min = min(self._up_min, self._up)
        self._down_min = min(self._down_min, self._down)
        rise = self._up - self._up_min > self.threshold
        fall = self._down - self._down_min > self.threshold
        fired = (self.mode in ("up", "both") and rise) or (self.mode in ("down", "both") and fall)
        self.drift_detected = bool(fired and self.n_ >= self.min_instances)
        return self

"""Value types every layer shares: what a prediction is, what a loaded model does,
and which version answers a request.

They sit in the kernel so that contracts, monitoring, pipelines and serving speak
of ``Predictions`` without depending on the flavors that produce them, and so that
serving asks a ``TrafficRouter`` that the rollout area implements without either
importing the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd

__all__ = ["ArrayModel", "Model", "Predictions", "RouteDecision", "Task", "TrafficRouter"]

Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class Predictions:
    """The output of one predict call over ``n`` rows.

    Classifiers fill ``labels`` (original class values, shape ``(n,)``), ``classes``
    and, when the model has them, ``probabilities`` (shape ``(n, len(classes))``).
    Regressors fill ``values`` (shape ``(n,)``).
    """

    task: Task
    labels: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    classes: tuple[Any, ...] = ()
    values: np.ndarray | None = None

    def __len__(self) -> int:
        column = self.labels if self.task == "classification" else self.values
        return 0 if column is None else len(column)

    def to_records(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per row: ``{"label", "probabilities"}`` or ``{"value"}``."""
        if self.task == "regression":
            assert self.values is not None
            return [{"value": float(v)} for v in self.values.tolist()]
        assert self.labels is not None
        labels = [_plain(v) for v in self.labels.tolist()]
        if self.probabilities is None:
            return [{"label": label} for label in labels]
        names = [str(c) for c in self.classes]
        return [
            {"label": label, "probabilities": dict(zip(names, row, strict=True))}
            for label, row in zip(labels, self.probabilities.tolist(), strict=True)
        ]

    def take(self, start: int, stop: int) -> Predictions:
        """Rows ``start:stop`` (used to fan a micro-batch back out)."""
        return self.rows(slice(start, stop))

    def rows(self, index: slice | np.ndarray) -> Predictions:
        """The rows ``index`` picks (a slice, positions, or a boolean mask)."""

        def cut(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else np.asarray(a)[index]

        return Predictions(
            task=self.task,
            labels=cut(self.labels),
            probabilities=cut(self.probabilities),
            classes=self.classes,
            values=cut(self.values),
        )


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class Model(Protocol):
    """A loaded model: predicts a frame whose columns follow the contract's order.

    Optional fast path: a model whose inputs can be one numeric matrix may also offer
    ``predict_array(array: np.ndarray) -> Predictions`` (rows x features, columns in the
    contract's order), which skips building a DataFrame. Callers test for it with
    ``isinstance(model, ArrayModel)`` and use it only when every feature is numeric.
    """

    task: Task
    classes: tuple[Any, ...]

    def predict(self, frame: pd.DataFrame) -> Predictions:
        """Predict every row of ``frame``."""
        ...


@runtime_checkable
class ArrayModel(Model, Protocol):
    """A ``Model`` that also predicts a 2-D numeric array directly (the optional fast path)."""

    def predict_array(self, array: np.ndarray) -> Predictions:
        """Predict every row of ``array`` (columns in the contract's order)."""
        ...


@dataclass(frozen=True)
class RouteDecision:
    """Which version answers a request, which get a copy off the request path, and the arm."""

    version: int
    shadow: tuple[int, ...] = ()
    arm: str = "stable"  # "stable" | "candidate" | "a" | "b"


@runtime_checkable
class TrafficRouter(Protocol):
    """Chooses the version for each request (serving's alias router; rollouts' table)."""

    def route(self, model: str, key: str | None) -> RouteDecision:
        """The decision for one request to ``model`` (``key`` enables sticky routing)."""
        ...

    def versions_in_use(self) -> dict[str, set[int]]:
        """Every version that must be loaded and warm now, per model."""
        ...

"""Per-class isotonic calibration of predicted probabilities, stored as plain threshold arrays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mloop.errors import InvalidInput

__all__ = ["Calibration"]


@dataclass(frozen=True)
class Calibration:
    """A monotone map per class from predicted probability to observed frequency.

    ``x[k]`` / ``y[k]`` are the isotonic thresholds of class ``classes[k]``; :meth:`apply`
    interpolates each column with ``np.interp`` and renormalises every row to sum to one.
    """

    classes: tuple[str, ...]
    x: tuple[tuple[float, ...], ...]
    y: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        if not (len(self.classes) == len(self.x) == len(self.y)):
            raise InvalidInput("Calibration needs one x/y threshold pair per class.")
        for xs, ys in zip(self.x, self.y, strict=True):
            if len(xs) != len(ys) or not xs:
                raise InvalidInput("Calibration thresholds must be non-empty and paired.")

    @classmethod
    def fit(
        cls, probabilities: np.ndarray, target: Sequence[Any] | np.ndarray, classes: Sequence[Any]
    ) -> Calibration:
        """Fit one isotonic regression per class of ``probabilities`` against ``target`` labels.

        Labels are matched to ``classes`` by value (falling back to their text).
        """
        from sklearn.isotonic import IsotonicRegression

        probs = np.asarray(probabilities, dtype=np.float64)
        if probs.ndim != 2 or probs.shape[1] != len(classes):
            raise InvalidInput(
                f"Probabilities of shape {probs.shape} do not match {len(classes)} classes."
            )
        codes = encode_labels(target, classes)
        known = codes >= 0
        if not known.any():
            raise InvalidInput(
                f"None of the target labels is one of the model's classes {list(classes)}; "
                "check that the target column matches the predictions."
            )
        probs, codes = probs[known], codes[known]
        xs: list[tuple[float, ...]] = []
        ys: list[tuple[float, ...]] = []
        for k in range(len(classes)):
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            iso.fit(probs[:, k], (codes == k).astype(np.float64))
            xs.append(tuple(float(v) for v in iso.X_thresholds_))
            ys.append(tuple(float(v) for v in iso.y_thresholds_))
        return cls(classes=tuple(str(c) for c in classes), x=tuple(xs), y=tuple(ys))

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, same shape; rows sum to one."""
        probs = np.asarray(probabilities, dtype=np.float64)
        if probs.ndim != 2 or probs.shape[1] != len(self.classes):
            raise InvalidInput(
                f"Probabilities of shape {probs.shape} do not match the calibration's "
                f"{len(self.classes)} classes."
            )
        out = np.empty_like(probs)
        for k, (xs, ys) in enumerate(zip(self.x, self.y, strict=True)):
            out[:, k] = np.interp(probs[:, k], xs, ys)
        total = out.sum(axis=1, keepdims=True)
        # A row every map sends to zero carries no information: keep the model's own output.
        return np.where(total > 0, out / np.where(total > 0, total, 1.0), probs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "classes": list(self.classes),
            "x": [list(v) for v in self.x],
            "y": [list(v) for v in self.y],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        """Inverse of :meth:`to_dict`."""
        return cls(
            classes=tuple(str(c) for c in data["classes"]),
            x=tuple(tuple(float(v) for v in xs) for xs in data["x"]),
            y=tuple(tuple(float(v) for v in ys) for ys in data["y"]),
        )


def encode_labels(labels: Sequence[Any] | np.ndarray, classes: Sequence[Any]) -> np.ndarray:
    """Index of each label in ``classes`` (-1 when unknown or missing), by value then by text."""
    import pandas as pd

    values = pd.Series(np.asarray(labels, dtype=object).ravel(), dtype=object)
    index = pd.Index(list(classes), dtype=object)
    try:
        codes = np.asarray(index.get_indexer(values), dtype=np.int64)
    except (TypeError, ValueError):
        codes = np.full(len(values), -1, dtype=np.int64)
    if (codes < 0).any():
        text_index = pd.Index([str(c) for c in classes], dtype=object)
        as_text = values.map(lambda v: None if v is None or v != v else str(v))
        by_text = np.asarray(text_index.get_indexer(as_text), dtype=np.int64)
        codes = np.where(codes < 0, by_text, codes)
    return codes

"""Training data from mloop's own prediction log joined with feedback labels."""

from __future__ import annotations

from typing import Any, Protocol

import orjson
import pandas as pd

from mloop.pipelines._spec import Window

__all__ = ["LogFeedbackSource", "PredictionReader"]

_EPOCH = 0.0


class PredictionReader(Protocol):
    """Reads logged rows with their joined ``label`` (``mloop.monitor.Monitor`` satisfies it)."""

    def predictions(self, model: str | None, since: float, until: float) -> pd.DataFrame:
        """One row per predicted row: ``ts``, ``inputs`` (JSON or dict), ``label`` (or None)."""
        ...


def _inputs(value: Any) -> dict[str, Any]:
    if isinstance(value, str | bytes):
        loaded = orjson.loads(value)
        return dict(loaded) if isinstance(loaded, dict) else {}
    return dict(value) if isinstance(value, dict) else {}


class LogFeedbackSource:
    """A ``LabeledSource``: logged inputs of a model plus the labels fed back for them."""

    def __init__(self, reader: PredictionReader) -> None:
        self.reader = reader

    def labeled_rows(self, model: str, window: Window) -> pd.DataFrame:
        """Feature columns + ``label`` + ``ts`` for labeled predictions in ``window``."""
        rows = self.reader.predictions(model, window.start, window.end)
        if rows.empty or "label" not in rows:
            return pd.DataFrame(columns=["ts", "label"])
        rows = rows[rows["label"].notna()].reset_index(drop=True)
        features = pd.DataFrame([_inputs(v) for v in rows["inputs"]])
        return features.assign(label=rows["label"].to_numpy(), ts=rows["ts"].to_numpy())

    def count_labeled(self, model: str) -> int:
        """Labeled rows of ``model`` logged so far."""
        rows = self.reader.predictions(model, _EPOCH, 4e9)
        return 0 if rows.empty or "label" not in rows else int(rows["label"].notna().sum())

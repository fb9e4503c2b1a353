"""A loaded model version that validates its input and returns labelled predictions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from mloop.flavors import Model, Predictions
from mloop.registry._model_version import ModelVersion

if TYPE_CHECKING:
    from mloop.contracts import Schema, Violation

__all__ = ["Predictor"]


class Predictor:
    """What ``mloop.load`` returns: ``predict(records_or_frame) -> Predictions``."""

    def __init__(self, version: ModelVersion, model: Model) -> None:
        self.version = version
        self.model = model

    @property
    def schema(self) -> Schema | None:
        """The input contract, if the version was registered with training data."""
        return self.version.schema

    @property
    def task(self) -> str:
        """``"classification"`` or ``"regression"``."""
        return self.model.task

    @property
    def classes(self) -> tuple[Any, ...]:
        """Class labels in probability-column order (classifiers)."""
        return self.model.classes

    def validate(self, data: Any) -> list[Violation]:
        """Every contract violation in ``data`` (empty when it conforms)."""
        return [] if self.schema is None else self.schema.validate(data)

    def to_frame(self, data: Any) -> pd.DataFrame:
        """``data`` as a frame in contract order; raises ``InvalidInput`` on violations."""
        if self.schema is not None:
            return self.schema.check(data)
        return data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)

    def predict(self, data: Any) -> Predictions:
        """Validate ``data`` (records, dict of columns, or a frame) and predict it."""
        return self.model.predict(self.to_frame(data))

    def __repr__(self) -> str:
        return f"<Predictor {self.version.ref} {self.version.flavor} {self.task}>"

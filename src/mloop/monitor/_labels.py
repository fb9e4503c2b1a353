"""Is a delayed label one the model can be judged by? Checked before the label is stored.

A label that is not one of a classifier's classes (``"Benign"`` for ``"benign"``)
would be stored, joined, and make realized accuracy of its whole window meaningless;
a text label for a regressor cannot be scored at all. The check runs at the door, so
the sender hears about it (a 422 that lists the classes, with a hint when only case
or spaces differ) instead of the dashboard going quiet.

Which model a label is for: the one the label names (``"model"``), else every model
of the registry (the label must fit one of them); the prediction it refers to may
not be logged yet, so the request id cannot tell.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mloop.errors import InvalidInput

__all__ = ["LabelSpaces", "check_label"]

# model -> (tasks of its versions, classes of its classifier versions)
LabelSpaces = Mapping[str, tuple[frozenset[str], frozenset[Any]]]

_SHOWN = 12


def _key(value: Any) -> str:
    return str(value).strip().casefold()


def check_label(label: Any, model: str | None, spaces: LabelSpaces, index: int) -> None:
    """Raise ``InvalidInput`` when no candidate model can be scored by ``label``."""
    named = model is not None and model in spaces
    candidates = {model: spaces[model]} if model is not None and named else dict(spaces)
    if not candidates:
        return  # nothing registered to check against (the join ignores it later)
    numeric = isinstance(label, int | float) and not isinstance(label, bool)
    classes: set[Any] = set()
    for tasks, found in candidates.values():
        if "regression" in tasks and numeric:
            return
        if label in found or str(label) in {str(c) for c in found}:
            return
        classes.update(found)
    where = f"model {model!r}" if named else "any registered model"
    if not classes:
        raise InvalidInput(
            f"Feedback item {index} has label {label!r}, but {where} is a regressor: "
            "send the observed value as a number.",
            violations=[{"row": index, "field": "label", "value": label}],
        )
    shown = sorted((str(c) for c in classes), key=str)
    listed = ", ".join(repr(c) for c in shown[:_SHOWN]) + (
        f" (+{len(shown) - _SHOWN} more)" if len(shown) > _SHOWN else ""
    )
    near = [c for c in shown if _key(c) == _key(label)]
    hint = f" Did you mean {near[0]!r}? Labels are compared exactly, case included." if near else ""
    raise InvalidInput(
        f"Feedback item {index} has label {label!r}, which is not a class of {where}: "
        f"{listed}.{hint}",
        violations=[{"row": index, "field": "label", "value": label, "expected": shown[:50]}],
    )

"""Is a delayed label one its model can be judged by? Pure checks, run before a label is stored.

A label that is not one of a classifier's classes (``"Benign"`` for ``"benign"``)
would be stored, joined, and count against realized accuracy of its whole window;
a text label for a regressor cannot be scored at all. Checked at the door, the
sender hears about it (a 422 that lists the classes, with a hint when only case or
spaces differ) instead of the dashboard going quiet.

Labels are compared with classes as text, as the join does (``observe_rows``), so
what passes here is what gets scored. A number equal to an integer class (``1.0``
for ``1``, what a CSV column with gaps holds) is stored as that class.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["LabelRejected", "LabelSpaces", "fit_label"]

# model -> (tasks of its versions, classes of its classifier versions)
LabelSpaces = Mapping[str, tuple[frozenset[str], frozenset[Any]]]

_SHOWN = 12


class LabelRejected(ValueError):
    """The label cannot be scored against its model; the message says why and what fits."""


def _key(value: Any) -> str:
    return str(value).strip().casefold()


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_class(label: Any, classes: frozenset[Any]) -> tuple[bool, Any]:
    text = str(label)
    for c in classes:
        if str(c) == text:
            return True, label
    if _is_number(label) and math.isfinite(label):
        for c in classes:
            if _is_number(c) and c == label:
                return True, c
    return False, None


def _listed(classes: list[str]) -> str:
    shown = ", ".join(repr(c) for c in classes[:_SHOWN])
    return shown + (f" (+{len(classes) - _SHOWN} more)" if len(classes) > _SHOWN else "")


def fit_label(label: Any, model: str | None, spaces: LabelSpaces) -> Any:
    """The label as stored, when ``model`` (or, without one, some model) can be scored by it.

    Raises ``LabelRejected`` otherwise, worded to follow "item 3 has": it lists the
    classes and, when only case or surrounding spaces differ, names the class that was
    probably meant.
    """
    if model is not None and model not in spaces:
        known = _listed(sorted(spaces))
        raise LabelRejected(
            f"model {model!r}, which is not registered"
            + (f" (registered: {known})" if known else "")
            + "; name the model the prediction came from, or leave 'model' out."
        )
    candidates = [spaces[model]] if model is not None else list(spaces.values())
    if not candidates:
        return label  # nothing registered to judge by; the join ignores what it cannot score
    classes: set[Any] = set()
    for tasks, found in candidates:
        if "regression" in tasks and _is_number(label) and math.isfinite(label):
            return label
        fits, stored = _as_class(label, found)
        if fits:
            return stored
        classes.update(found)
    where = f"model {model!r}" if model is not None else "any registered model"
    if not classes:
        raise LabelRejected(
            f"label {_short(label)}, but {where} is a regressor: send the observed value as "
            "a finite number."
        )
    shown = sorted(str(c) for c in classes)
    near = [c for c in shown if _key(c) == _key(label)]
    hint = f" Did you mean {near[0]!r}? Labels are compared exactly, case included." if near else ""
    raise LabelRejected(
        f"label {_short(label)}, which is not a class of {where}: {_listed(shown)}.{hint}"
    )

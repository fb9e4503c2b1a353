"""Is a delayed label one its model can be judged by? Pure checks, run before a label is stored.

A label that differs from a classifier's class only in case or spaces (``"Benign"``
for ``"benign"``) is a typo that would count against realized accuracy of its whole
window; a text label for a regressor, or for a classifier of integer classes, cannot
be scored at all. Checked at the door, the sender hears about it (a 422 that lists
the classes, with a hint when only case or spaces differ) instead of the dashboard
going quiet.

A class the model has never seen, of the same kind as its classes (text for text,
a whole number for integers), is accepted: the world grows new classes (a species a
survey never met, a new kind of fraud), the model is simply wrong on them, and the
retraining pipeline needs exactly those labels. The join counts them as misses and
reports how many there were (``new_class_labels``).

Labels are compared with classes as text, as the join does (``observe_rows``), so
what passes here is what gets scored. A number equal to an integer class (``1.0``
for ``1``, what a CSV column with gaps holds) is stored as that class.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["LabelRejected", "LabelSpaces", "as_new_class", "fit_label"]

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


def as_new_class(label: Any, classes: frozenset[Any] | set[Any]) -> tuple[bool, Any]:
    """``(True, stored)`` when ``label`` can be a class a classifier of ``classes`` never saw.

    Text for text classes, unless it matches a class but for case or spaces (a
    typo); a whole number for integer classes. Booleans and mixed classes grow no
    new classes.
    """
    if not classes:
        return False, None
    if all(isinstance(c, str) for c in classes):
        if not isinstance(label, str) or not label.strip():
            return False, None
        return (not any(_key(c) == _key(label) for c in classes)), label
    integers = all(_is_number(c) and float(c).is_integer() for c in classes)
    if integers and _is_number(label) and math.isfinite(label) and float(label).is_integer():
        return True, int(label)
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
    for _tasks, found in candidates:
        fits, stored = as_new_class(label, found)
        if fits:
            return stored
    where = f"model {model!r}" if model is not None else "any registered model"
    if not classes:
        raise LabelRejected(
            f"label {_short(label)}, but {where} is a regressor: send the observed value as "
            "a finite number."
        )
    shown = sorted(str(c) for c in classes)
    near = [c for c in shown if _key(c) == _key(label)]
    hint = f" Did you mean {near[0]!r}? Labels are compared exactly, case included." if near else ""
    kind = "" if near else " and not a new class of the same kind (text, or whole numbers)"
    raise LabelRejected(
        f"label {_short(label)}, which is not a class of {where}{kind}: {_listed(shown)}.{hint}"
    )

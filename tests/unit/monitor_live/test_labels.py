"""fit_label: a label is stored only when its model can be scored by it, compared as the join does."""

from __future__ import annotations

from typing import Any

import pytest

from mloop.journal._labels import LabelRejected, LabelSpaces, fit_label

SPACES: LabelSpaces = {
    "cancer": (frozenset({"classification"}), frozenset({"benign", "malignant"})),
    "default": (frozenset({"classification"}), frozenset({0, 1})),
    "flag": (frozenset({"classification"}), frozenset({False, True})),
    "price": (frozenset({"regression"}), frozenset()),
}


@pytest.mark.parametrize("label", ["Benign", "BENIGN", " benign", "benign "])
def test_a_label_that_differs_only_in_case_or_spaces_is_refused_with_a_hint(label: str) -> None:
    with pytest.raises(LabelRejected) as caught:
        fit_label(label, "cancer", SPACES)
    message = str(caught.value)
    assert message.startswith(f"label {label!r}, which is not a class of model 'cancer':")
    assert "'benign', 'malignant'." in message
    assert "Did you mean 'benign'?" in message


def test_a_label_of_another_kind_lists_the_classes_without_a_hint() -> None:
    with pytest.raises(LabelRejected, match="'benign', 'malignant'") as caught:
        fit_label(2, "cancer", SPACES)
    assert "not a new class of the same kind" in str(caught.value)
    assert "Did you mean" not in str(caught.value)


@pytest.mark.parametrize(
    ("label", "model", "stored"),
    [
        ("borderline", "cancer", "borderline"),  # the world grew a class the model never saw
        (2, "default", 2),
        (2.0, "default", 2),
        ("maybe", None, "maybe"),  # a new class of some text classifier
    ],
)
def test_a_new_class_of_the_same_kind_is_accepted(
    label: Any, model: str | None, stored: Any
) -> None:
    fitted = fit_label(label, model, SPACES)
    assert fitted == stored and type(fitted) is type(stored)


@pytest.mark.parametrize(
    ("label", "model", "stored"),
    [
        ("benign", "cancer", "benign"),
        (1, "default", 1),
        ("1", "default", "1"),  # the join compares as text: "1" scores class 1
        (1.0, "default", 1),  # a CSV column with gaps holds floats: stored as the class
        (True, "flag", True),
        (3.5, "price", 3.5),
        (7, "price", 7),
        ("malignant", None, "malignant"),  # no model named: some registered model fits
    ],
)
def test_a_label_that_scores_its_model_is_stored_as_its_class(
    label: Any, model: str | None, stored: Any
) -> None:
    fitted = fit_label(label, model, SPACES)
    assert fitted == stored and type(fitted) is type(stored)


@pytest.mark.parametrize(
    ("label", "model", "words"),
    [
        (
            True,
            "default",
            r"not a class of model 'default' and not a new class .*: '0', '1'",
        ),  # True is not 1
        (1.5, "default", "not a class of model 'default'"),
        ("cheap", "price", "model 'price' is a regressor: send the observed value as a finite"),
        (float("inf"), "price", "finite number"),
        ("2", "default", "not a class of model 'default' and not a new class"),
        (2.5, "default", "not a class of model 'default'"),
        ("no", "flag", "not a class of model 'flag'"),  # booleans grow no new classes
        (" Benign", None, "Did you mean 'benign'"),
        ("benign", "cancr", r"model 'cancr', which is not registered \(registered: 'cancer'"),
    ],
)
def test_a_label_that_cannot_score_its_model_is_refused(
    label: Any, model: str | None, words: str
) -> None:
    with pytest.raises(LabelRejected, match=words):
        fit_label(label, model, SPACES)


def test_without_registered_models_nothing_is_judged() -> None:
    assert fit_label("anything", None, {}) == "anything"

"""scikit-learn flavor: estimators saved with skops, loaded trusting only known modules.

skops rebuilds objects from an explicit description instead of running pickle opcodes, but
it can still construct any importable type it is told to. So at load mloop trusts only types
whose top-level module is in ``TRUSTED_MODULES``; anything else needs the caller's
``trust=True`` once, at registration, and is then recorded in the metadata. Plain
pickle/joblib files run arbitrary code when read, so they are opened only with ``trust=True``.
"""

from __future__ import annotations

import copy
import pickle
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mloop.errors import IntegrityError, InvalidInput, MloopError
from mloop.flavors._base import Model
from mloop.flavors._estimator import (
    EstimatorModel,
    estimator_classes,
    infer_task,
    labels_follow_probabilities,
)
from mloop.flavors._outputs import json_ready

__all__ = [
    "TRUSTED_MODULES",
    "SklearnFlavor",
    "estimator_model",
    "is_sklearn_estimator",
    "load_pickle_file",
    "load_skops_file",
    "untrusted_types",
    "without_feature_names",
]

TRUSTED_MODULES = frozenset({"sklearn", "numpy", "scipy", "builtins", "collections"})
_FILE = "model.skops"


def untrusted_types(type_names: Iterable[str]) -> list[str]:
    """The types whose top-level module is outside ``TRUSTED_MODULES``, sorted."""
    return sorted({t for t in type_names if t.split(".", 1)[0] not in TRUSTED_MODULES})


def is_sklearn_estimator(model: object) -> bool:
    """True for a scikit-learn estimator (its class lives in the ``sklearn`` package)."""
    module = type(model).__module__
    if not module.startswith("sklearn."):
        return False
    from sklearn.base import BaseEstimator

    return isinstance(model, BaseEstimator)


def _is_composite(estimator: Any) -> bool:
    """True when the estimator holds other estimators (pipelines, column transformers, ...)."""
    from sklearn.base import BaseEstimator

    if getattr(estimator, "steps", None) or getattr(estimator, "transformers", None):
        return True
    for value in estimator.get_params(deep=False).values():
        items = value if isinstance(value, list | tuple) else (value,)
        for item in items:
            parts = item if isinstance(item, tuple) else (item,)
            if any(isinstance(p, BaseEstimator) for p in parts):
                return True
    return False


def _outputs(estimator: Any, data: Any) -> list[np.ndarray]:
    out = [np.asarray(estimator.predict(data))]
    if hasattr(estimator, "predict_proba"):
        out.append(np.asarray(estimator.predict_proba(data)))
    return out


def without_feature_names(estimator: Any) -> Any | None:
    """A shallow copy that predicts arrays without name checks, or None when unsafe.

    Only for single estimators fitted on a frame of numeric columns: their predictions do
    not depend on the names, only on the column order (which the contract fixes). The copy
    must give the same answers on a probe row and raise no warning, else None.
    """
    names = getattr(estimator, "feature_names_in_", None)
    n = getattr(estimator, "n_features_in_", None)
    if names is None or n is None or _is_composite(estimator):
        return None
    stripped = copy.copy(estimator)
    try:
        del stripped.feature_names_in_
    except AttributeError:
        return None
    import pandas as pd

    probe = np.zeros((1, int(n)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = _outputs(stripped, probe)
            want = _outputs(estimator, pd.DataFrame(probe, columns=list(names)))
            same = all(_same(g, w) for g, w in zip(got, want, strict=True))
    except Exception:  # anything odd (a warning, dtype trouble): keep the frame path
        return None
    return stripped if same else None


def _same(got: np.ndarray, want: np.ndarray) -> bool:
    if got.shape != want.shape or got.dtype != want.dtype:
        return False
    if got.dtype.kind in "fc":
        return bool(np.array_equal(got, want, equal_nan=True))
    return bool(np.array_equal(got, want))


def estimator_model(estimator: Any) -> EstimatorModel:
    """Wrap a fitted scikit-learn estimator as a ``Model``."""
    names = getattr(estimator, "feature_names_in_", None)
    task = infer_task(estimator)
    return EstimatorModel(
        estimator,
        task=task,
        classes=estimator_classes(estimator) if task == "classification" else (),
        # Fitted on a DataFrame -> give it one (column names are checked); fitted on an
        # array -> give it an array (no feature-name warning, no DataFrame overhead).
        inputs="frame" if names is not None else "array",
        labels_from_probabilities=labels_follow_probabilities(estimator),
        feature_names=None if names is None else [str(n) for n in names],
        array_estimator=None if names is None else without_feature_names(estimator),
    )


def _skops() -> Any:
    import skops.io

    return skops.io


def load_skops_file(path: Path, *, trust: bool = False, recorded: Iterable[str] = ()) -> Any:
    """Load a ``.skops`` file, refusing types outside the trusted modules unless ``trust``."""
    sio = _skops()
    try:
        found = sio.get_untrusted_types(file=path)
    except Exception as exc:
        raise InvalidInput(f"'{path}' is not a readable skops file: {exc}") from exc
    refused = sorted(set(untrusted_types(found)) - set(recorded))
    if refused and not trust:
        raise InvalidInput(
            f"'{path}' contains types outside {sorted(TRUSTED_MODULES)}: {', '.join(refused)}. "
            "Loading them would run their code. If you trust where this file came from, pass "
            "trust=True (CLI: --trust).",
            untrusted_types=refused,
        )
    return sio.load(path, trusted=found)


def load_pickle_file(path: Path, *, trust: bool = False) -> Any:
    """Unpickle ``path`` (pickle, cloudpickle or joblib); only with ``trust=True``."""
    if not trust:
        raise InvalidInput(
            f"Refusing to unpickle '{path}': reading a pickle runs arbitrary code from the file. "
            "If you trust where it came from, pass trust=True (CLI: --trust); better, save the "
            "model with skops (skops.io.dump(model, 'model.skops')) and register that file."
        )
    try:
        if path.suffix == ".joblib":
            import joblib

            return joblib.load(path)
        with path.open("rb") as handle:
            return pickle.load(handle)
    except MloopError:
        raise
    except Exception as exc:
        raise InvalidInput(f"Could not unpickle '{path}': {exc}") from exc


class SklearnFlavor:
    """scikit-learn estimators and pipelines, stored as skops files."""

    name = "sklearn"

    def accepts(self, model: object) -> bool:
        """True for an sklearn estimator whose every part is a trusted type."""
        if not is_sklearn_estimator(model):
            return False
        try:
            data = _skops().dumps(model)
        except Exception:
            return False
        return not untrusted_types(_skops().get_untrusted_types(data=data))

    def save(self, model: object, folder: Path, *, trust: bool = False) -> Mapping[str, Any]:
        """Write ``model.skops``; types outside the trusted modules need ``trust=True``."""
        if not is_sklearn_estimator(model):
            raise InvalidInput(
                f"The sklearn flavor saves scikit-learn estimators; got {type(model).__name__}."
            )
        sio = _skops()
        try:
            data = sio.dumps(model)
        except Exception as exc:
            raise InvalidInput(
                f"skops cannot save this {type(model).__name__}: {exc}. "
                "Register it with the 'pyfunc' flavor instead."
            ) from exc
        extra = untrusted_types(sio.get_untrusted_types(data=data))
        if extra and not trust:
            raise InvalidInput(
                f"This {type(model).__name__} contains types outside {sorted(TRUSTED_MODULES)}: "
                f"{', '.join(extra)}. Pass trust=True (CLI: --trust) to allow loading them "
                "wherever the model is served (they must be importable there), or register it "
                "with the 'pyfunc' flavor, which stores the code by value.",
                untrusted_types=extra,
            )
        (folder / _FILE).write_bytes(data)
        import sklearn

        task = infer_task(model)
        names = getattr(model, "feature_names_in_", None)
        return {
            "format": "skops",
            "file": _FILE,
            "task": task,
            "classes": json_ready(estimator_classes(model)) if task == "classification" else [],
            "feature_names": None if names is None else [str(n) for n in names],
            "trusted_types": extra,
            "sklearn_version": sklearn.__version__,
        }

    def load(self, folder: Path, meta: Mapping[str, Any], *, trust: bool = False) -> Model:
        """Load the skops file, trusting the types recorded when it was registered."""
        path = folder / str(meta.get("file", _FILE))
        try:
            estimator = load_skops_file(path, trust=trust, recorded=meta.get("trusted_types", ()))
        except InvalidInput as exc:
            # The registry stored this artifact itself: a type nobody trusted at registration
            # means the bytes or metadata were changed afterwards.
            raise IntegrityError(
                f"Stored sklearn model '{path.name}' holds types nobody trusted at registration "
                f"({exc.details.get('untrusted_types', [])}); refusing to load it.",
            ) from exc
        return estimator_model(estimator)

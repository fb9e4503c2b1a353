"""pyfunc flavor: any object with ``predict``, stored by value with cloudpickle.

Like MLflow, a class defined in ``__main__`` (a script or a notebook) or in a module that
is not an installed library is pickled together with its code, so the serving process needs
nothing but the libraries the code imports. Registering such an object is the user's act of
trust; loading it back needs no flag because the registry verifies the stored bytes' hashes.
"""

from __future__ import annotations

import pickle
import platform
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from mloop.errors import FatalError, InvalidInput, MissingDependency
from mloop.flavors._base import Model
from mloop.flavors._estimator import (
    EstimatorModel,
    FrameModel,
    estimator_classes,
    infer_task,
    labels_follow_probabilities,
)
from mloop.flavors._outputs import check_task, classes_from_meta, json_ready

__all__ = ["PyfuncFlavor", "object_model", "pickle_by_value", "task_from_target"]

_FILE = "model.cloudpickle"


def _installed(module: ModuleType) -> bool:
    """True when the module comes from an installed library (site-packages or the stdlib)."""
    origin = getattr(module, "__file__", None)
    if origin is None:
        return module.__name__ in sys.builtin_module_names
    path = Path(origin).resolve()
    if "site-packages" in path.parts or "dist-packages" in path.parts:
        return True
    paths = sysconfig.get_paths()
    roots = {Path(paths[k]).resolve() for k in ("purelib", "platlib", "stdlib", "platstdlib")}
    return any(path.is_relative_to(root) for root in roots)


def pickle_by_value(model: object) -> bytes:
    """cloudpickle ``model``, carrying its class's code unless it comes from an installed library.

    ``__main__`` (scripts, notebooks), modules loaded from a file path, and project code next
    to the training script are all absent where the model is served, so their code travels
    inside the artifact. Classes from installed libraries are referenced by name.
    """
    import cloudpickle

    module_name = type(model).__module__
    module = sys.modules.get(module_name)
    register = (
        module is not None
        and module_name != "__main__"
        and not _installed(module)
        and module_name not in cloudpickle.list_registry_pickle_by_value()
    )
    if register:
        cloudpickle.register_pickle_by_value(module)
    try:
        return bytes(cloudpickle.dumps(model, protocol=pickle.DEFAULT_PROTOCOL))
    except Exception as exc:
        raise InvalidInput(
            f"cloudpickle cannot serialize this {type(model).__name__}: {exc}"
        ) from exc
    finally:
        if register:
            cloudpickle.unregister_pickle_by_value(module)


def object_model(obj: Any, *, task: Any = None, classes: Any = None) -> FrameModel:
    """Wrap an object with ``predict`` (and maybe ``predict_proba``/``classes_``) as a Model."""
    from sklearn.base import BaseEstimator

    resolved = check_task(task) if task is not None else infer_task(obj)
    found = tuple(classes) if classes is not None else estimator_classes(obj)
    if isinstance(obj, BaseEstimator):
        names = getattr(obj, "feature_names_in_", None)
        return EstimatorModel(
            obj,
            task=resolved,
            classes=found if resolved == "classification" else (),
            inputs="frame" if names is not None else "array",
            labels_from_probabilities=labels_follow_probabilities(obj),
            feature_names=None if names is None else [str(n) for n in names],
        )
    # A user's own object: it gets the DataFrame with the contract's column names, and
    # its own predict() decides the labels.
    return FrameModel(
        obj, task=resolved, classes=found if resolved == "classification" else (), inputs="frame"
    )


def task_from_target(model: object, meta: Mapping[str, Any], target: Any) -> dict[str, Any]:
    """``meta`` as a classifier's when the object is silent about its task and ``target``
    holds class names (text, flags or categories), with the classes taken from it.

    A plain object with ``predict`` and no ``classes_`` would otherwise be registered
    as a regressor and fail on its first text answer; an object that declares
    ``task`` or has ``classes_`` keeps what it says.
    """
    out = dict(meta)
    if target is None or getattr(model, "task", None) is not None or hasattr(model, "classes_"):
        return out
    import pandas as pd

    labels = pd.Series(np.asarray(target, dtype=object).ravel()).dropna().infer_objects()
    dtype = labels.dtype
    names_classes = pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype)
    if labels.empty or not names_classes:
        return out
    out["task"] = "classification"
    out["classes"] = json_ready(tuple(sorted(labels.unique().tolist(), key=str)))
    return out


class PyfuncFlavor:
    """Any Python object with a ``predict`` method, stored with cloudpickle."""

    name = "pyfunc"

    def accepts(self, model: object) -> bool:
        """True for any object with a callable ``predict``."""
        return callable(getattr(model, "predict", None)) and not isinstance(model, type)

    def save(self, model: object, folder: Path, *, trust: bool = False) -> Mapping[str, Any]:
        """Write ``model.cloudpickle``; record task, classes and the Python version."""
        if not self.accepts(model):
            raise InvalidInput(
                f"The pyfunc flavor needs an object with a predict() method; got {type(model)!r}."
            )
        import cloudpickle

        data = pickle_by_value(model)
        task = infer_task(model)
        (folder / _FILE).write_bytes(data)
        return {
            "format": "cloudpickle",
            "file": _FILE,
            "task": task,
            "classes": json_ready(estimator_classes(model)) if task == "classification" else [],
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "python_version": platform.python_version(),
            "cloudpickle_version": cloudpickle.__version__,
        }

    def load(self, folder: Path, meta: Mapping[str, Any], *, trust: bool = False) -> Model:
        """Unpickle the object (the registry has verified the bytes) and wrap it."""
        data = (folder / str(meta.get("file", _FILE))).read_bytes()
        try:
            obj = pickle.loads(data)
        except ImportError as exc:
            raise MissingDependency(
                f"Loading pyfunc model {meta.get('class', '')!r} needs a module that is not "
                f"installed here: {exc}. Install the libraries its code imports.",
                package=getattr(exc, "name", None),
            ) from exc
        except Exception as exc:
            raise FatalError(
                f"Could not load pyfunc model {meta.get('class', '')!r} (saved with Python "
                f"{meta.get('python_version', '?')}, running {platform.python_version()}): {exc}"
            ) from exc
        classes = classes_from_meta(meta)
        return object_model(obj, task=meta.get("task"), classes=classes or None)

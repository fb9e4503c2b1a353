"""Import MLflow model directories as they are, without needing mlflow installed.

``import_mlflow`` reads the ``MLmodel`` YAML and turns the directory into something a
native flavor saves (an sklearn estimator, an xgboost/lightgbm model, ONNX bytes). A
``python_function`` model built from a ``PythonModel`` keeps its directory (artifacts,
code) and is stored by the ``mlflow`` flavor, which runs it through a small adapter.
"""

from __future__ import annotations

import inspect
import pickle
import shutil
import sys
import types
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInput, MissingDependency
from mloop.flavors._base import Model, Task
from mloop.flavors._estimator import estimator_classes
from mloop.flavors._outputs import check_task, classes_from_meta, json_ready
from mloop.flavors._pyfunc import object_model
from mloop.flavors._sklearn import load_pickle_file, load_skops_file

__all__ = ["MlflowFlavor", "MlflowModelDir", "import_mlflow", "read_mlmodel"]

_SUPPORTED = ("sklearn", "xgboost", "lightgbm", "onnx", "python_function (PythonModel)")
_XGB_CLASSES = ("XGBClassifier", "XGBRegressor", "XGBRFClassifier", "XGBRFRegressor")
_PYTHON_MODEL_BASES = ("PythonModel",)
_CLASSIFYING_TYPES = ("string", "long", "integer", "int32", "int64", "boolean", "bool", "str")


def read_mlmodel(path: Path | str) -> tuple[Path, dict[str, Any]]:
    """The model directory and its parsed ``MLmodel`` file."""
    import yaml

    root = Path(path)
    if root.name == "MLmodel":
        root = root.parent
    spec = root / "MLmodel"
    if not spec.is_file():
        raise InvalidInput(f"'{root}' is not an MLflow model directory: it has no MLmodel file.")
    try:
        parsed = yaml.safe_load(spec.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidInput(f"'{spec}' is not valid YAML: {exc}") from exc
    if not isinstance(parsed, dict) or not isinstance(parsed.get("flavors"), dict):
        raise InvalidInput(f"'{spec}' has no 'flavors' table; is it an MLflow MLmodel file?")
    return root, parsed


@dataclass(frozen=True)
class MlflowModelDir:
    """An MLflow ``python_function`` model directory the user chose to trust."""

    path: Path
    task: Task = "regression"
    classes: tuple[Any, ...] = field(default=())


def import_mlflow(
    path: Path | str, *, trust: bool = False, task: Task | None = None
) -> tuple[object, str]:
    """Read an MLflow model directory; return ``(model, flavor name)`` ready to register.

    Pickled files (``model.pkl``, ``python_model.pkl``) run code when read, so they need
    ``trust=True``; skops and native xgboost/lightgbm/ONNX files do not.
    """
    root, spec = read_mlmodel(path)
    flavors: dict[str, Any] = spec["flavors"]
    if "sklearn" in flavors:
        return _named(_sklearn(root, flavors["sklearn"], trust))
    if "xgboost" in flavors:
        return _xgboost(root, flavors["xgboost"]), "xgboost"
    if "lightgbm" in flavors:
        return _named(_lightgbm(root, flavors["lightgbm"], trust))
    if "onnx" in flavors:
        return (root / str(flavors["onnx"].get("data", "model.onnx"))).read_bytes(), "onnx"
    pyfunc = flavors.get("python_function") or {}
    if pyfunc.get("python_model"):
        if not trust:
            raise InvalidInput(
                f"'{root}' holds a cloudpickled PythonModel; reading it runs code from the file. "
                "If you trust where it came from, pass trust=True (CLI: --trust)."
            )
        model = _python_model(root, spec)  # load once now so a broken model fails here
        resolved = task or _signature_task(spec) or _attribute_task(model)
        classes = tuple(json_ready(estimator_classes(model))) if resolved != "regression" else ()
        return MlflowModelDir(root, task=resolved, classes=classes), "mlflow"
    raise InvalidInput(
        f"'{root}' has MLflow flavors {sorted(flavors)}; mloop imports {', '.join(_SUPPORTED)}.",
    )


def _named(model: object) -> tuple[object, str]:
    from mloop.flavors._catalog import flavor_for

    return model, flavor_for(model).name


def _sklearn(root: Path, conf: Mapping[str, Any], trust: bool) -> Any:
    path = root / str(conf.get("pickled_model", "model.pkl"))
    if conf.get("serialization_format") == "skops":
        return load_skops_file(path, trust=trust)
    return load_pickle_file(path, trust=trust)


def _xgboost(root: Path, conf: Mapping[str, Any]) -> Any:
    from mloop._deps import require

    xgb = require("xgboost", "importing an MLflow xgboost model")
    name = str(conf.get("model_class", "")).rsplit(".", 1)[-1]
    model = getattr(xgb, name)() if name in _XGB_CLASSES else xgb.Booster()
    model.load_model(str(root / str(conf.get("data", "model.xgb"))))
    return model


def _lightgbm(root: Path, conf: Mapping[str, Any], trust: bool) -> Any:
    from mloop._deps import require

    lgb = require("lightgbm", "importing an MLflow lightgbm model")
    data = root / str(conf.get("data", "model.lgb"))
    if str(conf.get("model_class", "")).endswith("Booster"):
        return lgb.Booster(model_file=str(data))
    return load_pickle_file(data, trust=trust)  # MLflow pickles lightgbm's sklearn wrappers


def _signature_task(spec: Mapping[str, Any]) -> Task | None:
    import json

    outputs = (spec.get("signature") or {}).get("outputs")
    if not outputs:
        return None
    try:
        columns = json.loads(outputs) if isinstance(outputs, str) else outputs
        first = columns[0]
        kind = first.get("type")
        if kind == "tensor":
            kind = first.get("tensor-spec", {}).get("dtype")
    except (ValueError, LookupError, AttributeError):
        return None
    return "classification" if str(kind) in _CLASSIFYING_TYPES else "regression"


def _attribute_task(model: object) -> Task:
    declared = getattr(model, "task", None)
    if declared in ("classification", "regression"):
        return check_task(declared)
    return "classification" if hasattr(model, "classes_") else "regression"


class _Context:
    """Stands in for ``mlflow.pyfunc.PythonModelContext``."""

    def __init__(self, artifacts: dict[str, str], model_config: dict[str, Any]):
        self.artifacts = artifacts
        self.model_config = model_config


class PythonModelShim:
    """Stands in for ``mlflow.pyfunc.PythonModel`` when mlflow is not installed."""

    def load_context(self, context: Any) -> None:
        """Nothing to prepare by default."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        """Subclasses predict."""
        raise NotImplementedError


class _MissingMlflow:
    """Base of stand-ins for mlflow objects a pickle names when mlflow is not installed.

    Unpickling may rebuild instances (without calling ``__init__``); calling one fails clearly.
    """

    _where = "mlflow"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise MissingDependency(
            f"This MLflow model calls {self._where}, which needs mlflow. "
            "Install it with: pip install 'mloop[mlflow]'",
            package="mlflow",
        )


def _missing(module: str, name: str) -> type:
    return type(name, (_MissingMlflow,), {"_where": f"{module}.{name}"})


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if not module.startswith("mlflow"):
            return super().find_class(module, name)
        # The PythonModel base class carries no state a model needs: a stand-in keeps the
        # model loadable where mlflow is not installed.
        if module.startswith("mlflow.pyfunc") and name in _PYTHON_MODEL_BASES:
            return PythonModelShim
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # mlflow warns about type hints on import
                return super().find_class(module, name)
        except ImportError:
            return _missing(module, name)


def _unwrapped_predict(python_model: Any) -> Any:
    """``predict`` without MLflow 3's type-hint validation wrapper (mloop validates input)."""
    predict = python_model.predict
    inner = getattr(predict, "__wrapped__", None)
    if getattr(predict, "_is_pyfunc", False) and callable(inner):
        return types.MethodType(inner, python_model)
    return predict


def _python_model(root: Path, spec: Mapping[str, Any]) -> Any:
    conf = spec["flavors"]["python_function"]
    code = conf.get("code")
    if code and str(root / code) not in sys.path:
        sys.path.insert(0, str(root / code))  # MLflow's code_paths are importable by contract
    with (root / str(conf["python_model"])).open("rb") as handle:
        python_model = _Unpickler(handle).load()
    artifacts = {
        name: str(root / str(entry.get("path", "")))
        for name, entry in (conf.get("artifacts") or {}).items()
        if isinstance(entry, Mapping)
    }
    context = _Context(artifacts, dict(conf.get("model_config") or {}))
    load_context = getattr(python_model, "load_context", None)
    if callable(load_context):
        load_context(context)
    return _Adapter(python_model, context)


class _Adapter:
    """Gives a PythonModel the plain ``predict(frame)`` mloop calls."""

    def __init__(self, python_model: Any, context: _Context):
        self.python_model = python_model
        self._context = context
        self._predict = _unwrapped_predict(python_model)
        parameters = list(inspect.signature(self._predict).parameters)
        self._with_context = bool(parameters) and parameters[0] == "context"
        classes = getattr(python_model, "classes_", None)
        if classes is not None:
            self.classes_ = classes
        task = getattr(python_model, "task", None)
        if task is not None:
            self.task = task

    def predict(self, frame: Any) -> Any:
        if self._with_context:
            return self._predict(self._context, frame)
        return self._predict(frame)


class MlflowFlavor:
    """MLflow ``python_function`` directories, stored whole and run without mlflow."""

    name = "mlflow"

    def accepts(self, model: object) -> bool:
        """True for an ``MlflowModelDir`` returned by ``import_mlflow``."""
        return isinstance(model, MlflowModelDir)

    def save(self, model: object, folder: Path, *, trust: bool = False) -> Mapping[str, Any]:
        """Copy the model directory as it is."""
        if not isinstance(model, MlflowModelDir):
            raise InvalidInput(
                "The mlflow flavor saves what import_mlflow() returns; "
                f"got {type(model).__name__}. Call import_mlflow(path, trust=True) first."
            )
        shutil.copytree(model.path, folder, dirs_exist_ok=True)
        _, spec = read_mlmodel(folder)
        return {
            "format": "mlflow",
            "task": model.task,
            "classes": json_ready(model.classes),
            "mlflow_version": spec.get("mlflow_version"),
            "loader_module": spec["flavors"].get("python_function", {}).get("loader_module"),
        }

    def load(self, folder: Path, meta: Mapping[str, Any], *, trust: bool = False) -> Model:
        """Unpickle the PythonModel (the registry has verified the bytes) and adapt it."""
        root, spec = read_mlmodel(folder)
        classes = classes_from_meta(meta)
        return object_model(
            _python_model(root, spec), task=meta.get("task"), classes=classes or None
        )

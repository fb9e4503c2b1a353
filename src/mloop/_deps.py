"""The one place optional dependencies are imported, lazily, with an install hint."""

from __future__ import annotations

import importlib
from types import ModuleType

from mloop.errors import MissingDependency

__all__ = ["require"]

# module name -> the extra that installs it
_EXTRAS: dict[str, str] = {
    "psycopg": "postgres",
    "redis": "redis",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "skl2onnx": "onnx",
    "onnxmltools": "onnx",
    "mlflow": "mlflow",
    "tiktoken": "tokens",
    "ray": "ray",
    "prefect": "prefect",
    "torch": "torch",
    "palmerpenguins": "demo",
}


def require(module: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise ``MissingDependency`` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        root = module.split(".", 1)[0]
        extra = _EXTRAS.get(root)
        how = f"pip install 'mloop[{extra}]'" if extra else f"pip install {root}"
        why = f" for {purpose}" if purpose else ""
        raise MissingDependency(
            f"The optional package '{root}' is needed{why} but is not installed. "
            f"Install it with: {how}",
            package=root,
        ) from exc

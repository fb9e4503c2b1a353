"""ONNX flavor: run a graph with onnxruntime.

Inputs are either one 2-D tensor holding every feature (in the contract's order) or one
input per column, as skl2onnx produces for a DataFrame pipeline. Outputs are a label plus
probabilities (a tensor, or skl2onnx's ZipMap list of dicts) for classifiers, or one value
per row for regressors.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop._deps import require
from mloop.errors import InvalidInput
from mloop.flavors._base import Model, Predictions, Task
from mloop.flavors._outputs import (
    as_column,
    check_task,
    classes_from_meta,
    classification,
    empty,
    probability_matrix,
    regression,
)

__all__ = ["OnnxFlavor", "OnnxModel", "expose_zipmap_input", "graph_classes", "onnx_bytes"]

_FILE = "model.onnx"
_DTYPES: dict[str, Any] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
    "tensor(string)": object,
}
_LABEL_TYPES = ("tensor(int64)", "tensor(int32)", "tensor(string)", "tensor(bool)")


def onnx_bytes(model: object) -> bytes:
    """The serialized graph of a ``ModelProto``, raw bytes or a path to a ``.onnx`` file."""
    if isinstance(model, bytes | bytearray):
        return bytes(model)
    if isinstance(model, str | Path):
        path = Path(model)
        if not path.is_file():
            raise InvalidInput(f"ONNX file '{path}' does not exist.")
        return path.read_bytes()
    serialize = getattr(model, "SerializeToString", None)
    if callable(serialize):
        return bytes(serialize())
    raise InvalidInput(
        f"The onnx flavor takes an onnx.ModelProto, bytes or a .onnx path; got {type(model)!r}."
    )


def graph_classes(data: bytes) -> list[Any]:
    """Class labels written into the graph by skl2onnx (ZipMap or *Classifier nodes)."""
    onnx = require("onnx", "reading ONNX class labels")
    proto = onnx.load_from_string(data)
    for node in proto.graph.node:
        if node.op_type != "ZipMap" and not node.op_type.endswith("Classifier"):
            continue
        for attribute in node.attribute:
            if attribute.name == "classlabels_strings":
                return [s.decode("utf-8") for s in attribute.strings]
            if attribute.name in ("classlabels_int64s", "classlabels_ints"):
                return [int(i) for i in attribute.ints]
    return []


def _is_onnx_object(model: object) -> bool:
    if isinstance(model, bytes | bytearray):
        return True
    if isinstance(model, str | Path):
        return Path(model).suffix == ".onnx"
    return type(model).__name__ == "ModelProto" and type(model).__module__.startswith("onnx")


class OnnxModel:
    """Runs an ``onnxruntime.InferenceSession`` and decodes its outputs."""

    def __init__(
        self,
        session: Any,
        *,
        task: Task,
        classes: Sequence[Any],
        probability_tensor: str | None = None,
    ):
        self.session = session
        self.task: Task = task
        self.classes: tuple[Any, ...] = tuple(classes)
        inputs = session.get_inputs()
        self._inputs = [(i.name, _DTYPES.get(i.type, np.float32)) for i in inputs]
        shape = inputs[0].shape if len(inputs) == 1 else None
        width = shape[1] if shape is not None and len(shape) == 2 else None
        # One 2-D input wider than one column: the whole row goes in as one tensor.
        self._tensor = len(inputs) == 1 and not (isinstance(width, int) and width == 1)
        outputs = session.get_outputs()
        self._label = next((o.name for o in outputs if o.type in _LABEL_TYPES), None)
        self._proba = next(
            (
                o.name
                for o in outputs
                if o.name != self._label and not o.type.startswith("tensor(s")
            ),
            None,
        )
        if probability_tensor is not None:
            self._proba = probability_tensor  # the matrix ZipMap would turn into dicts
        self._value = outputs[0].name

    def predict(self, frame: pd.DataFrame) -> Predictions:
        """Predict every row of ``frame``."""
        if len(frame) == 0:
            return empty(self.task, self.classes)
        if self._tensor:
            name, dtype = self._inputs[0]
            return self._run({name: _column_data(frame.to_numpy(), dtype)})
        return self._run(self._feeds(frame))

    def predict_array(self, array: np.ndarray) -> Predictions:
        """Predict a numeric matrix whose columns follow the contract's order."""
        if len(array) == 0:
            return empty(self.task, self.classes)
        if self._tensor:
            name, dtype = self._inputs[0]
            return self._run({name: np.ascontiguousarray(array, dtype=dtype)})
        return self.predict(pd.DataFrame(array, columns=[n for n, _ in self._inputs]))

    def _feeds(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        names = [n for n, _ in self._inputs]
        if not all(n in frame.columns for n in names):
            if len(frame.columns) != len(names):
                raise InvalidInput(
                    f"The ONNX model expects inputs {names}; "
                    f"the frame has columns {list(frame.columns)}."
                )
            frame = frame.set_axis(names, axis=1)  # same arity, other names: go by position
        return {
            name: _column_data(frame[name].to_numpy().reshape(-1, 1), dtype)
            for name, dtype in self._inputs
        }

    def _run(self, feeds: Mapping[str, np.ndarray]) -> Predictions:
        if self.task == "regression":
            (values,) = self.session.run([self._value], dict(feeds))
            return regression(values)
        wanted = [n for n in (self._label, self._proba) if n is not None]
        results = dict(zip(wanted, self.session.run(wanted, dict(feeds)), strict=True))
        classes = self.classes
        probabilities = None
        if self._proba is not None:
            raw = results[self._proba]
            if isinstance(raw, list):  # ZipMap: one {class: probability} dict per row
                if not classes and raw:
                    classes = tuple(raw[0].keys())
                probabilities = np.array([[row[c] for c in classes] for row in raw], np.float64)
                if not raw:
                    probabilities = np.zeros((0, len(classes)))
            else:
                probabilities = probability_matrix(raw)
                if not classes:
                    classes = tuple(range(probabilities.shape[1]))
        labels = as_column(results[self._label]) if self._label is not None else None
        return classification(classes, probabilities=probabilities, labels=labels)


def _column_data(data: np.ndarray, dtype: Any) -> np.ndarray:
    if dtype is object:
        # ONNX string tensors have no missing value: send the empty string instead.
        return np.where(pd.isna(data), "", data.astype(str)).astype(object)
    return np.ascontiguousarray(data, dtype=dtype)


class OnnxFlavor:
    """ONNX graphs (``ModelProto``, bytes or a ``.onnx`` path), run with onnxruntime."""

    name = "onnx"

    def accepts(self, model: object) -> bool:
        """True for an ``onnx.ModelProto``, bytes, or a path ending in ``.onnx``."""
        return _is_onnx_object(model)

    def save(self, model: object, folder: Path, *, trust: bool = False) -> Mapping[str, Any]:
        """Write ``model.onnx``; read the task and class labels from the graph."""
        data = onnx_bytes(model)
        session = _session(data)
        classes = graph_classes(data)
        outputs = session.get_outputs()
        classifying = bool(classes) or any(o.type in _LABEL_TYPES for o in outputs)
        (folder / _FILE).write_bytes(data)
        return {
            "format": "onnx",
            "file": _FILE,
            "task": "classification" if classifying else "regression",
            "classes": classes,
            "inputs": [{"name": i.name, "type": i.type} for i in session.get_inputs()],
            "outputs": [{"name": o.name, "type": o.type} for o in outputs],
        }

    def load(self, folder: Path, meta: Mapping[str, Any], *, trust: bool = False) -> Model:
        """Open an inference session over the stored graph."""
        data = (folder / str(meta.get("file", _FILE))).read_bytes()
        task = check_task(meta.get("task", "regression"))
        tensor = None
        if task == "classification":
            data, tensor = expose_zipmap_input(data)
        return OnnxModel(
            _session(data), task=task, classes=classes_from_meta(meta), probability_tensor=tensor
        )


def expose_zipmap_input(data: bytes) -> tuple[bytes, str | None]:
    """Add the probability matrix that feeds a ZipMap node to the graph's outputs.

    ZipMap turns each row into a Python dict; reading the matrix before it is far cheaper
    per row. Returns the graph unchanged (and ``None``) when there is no ZipMap output or
    the ``onnx`` package is not installed.
    """
    try:
        onnx = importlib.import_module("onnx")
    except ImportError:
        return data, None
    proto = onnx.load_from_string(data)
    outputs = {o.name for o in proto.graph.output}
    for node in proto.graph.node:
        if node.op_type == "ZipMap" and node.output[0] in outputs:
            tensor = str(node.input[0])
            if tensor not in outputs:
                info = onnx.helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, None)
                proto.graph.output.append(info)
            return bytes(proto.SerializeToString()), tensor
    return data, None


def _session(data: bytes) -> Any:
    ort = require("onnxruntime", "the onnx flavor")
    options = ort.SessionOptions()
    # Serving runs one session per worker and parallelises across requests: one thread each
    # avoids the oversubscription measured in FACTS.md.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise InvalidInput(f"onnxruntime cannot load this ONNX model: {exc}") from exc

"""Convert a loaded model to an ONNX graph: skl2onnx for scikit-learn, onnxmltools for boosters.

The graph's inputs follow the contract: one float tensor with every column in the
contract's order when every column is numeric (what serving's array path sends), else
one input per column (float or string), as skl2onnx expects for a ColumnTransformer.
"""

from __future__ import annotations

import contextlib
import copy
import math
import threading
from collections.abc import Iterator
from typing import Any

from mloop._deps import require
from mloop.contracts import Schema
from mloop.errors import InvalidInput
from mloop.flavors import Model

__all__ = ["CONVERTIBLE_FLAVORS", "convert_to_onnx", "quantize_onnx"]

CONVERTIBLE_FLAVORS = ("sklearn", "xgboost", "lightgbm")
_PATCH_LOCK = threading.Lock()


def convert_to_onnx(model: Model, flavor: str, schema: Schema) -> bytes:
    """The serialized ONNX graph of ``model`` (a loaded version of ``flavor``)."""
    if flavor not in CONVERTIBLE_FLAVORS:
        raise InvalidInput(
            f"mloop converts {', '.join(CONVERTIBLE_FLAVORS)} models to ONNX; this version's "
            f"flavor is {flavor!r}."
        )
    dated = [c.name for c in schema.columns if c.kind == "datetime"]
    if dated:
        raise InvalidInput(
            f"Columns {dated} are datetimes, which ONNX graphs of these models cannot take; "
            "turn them into numbers (e.g. days since an epoch) before training."
        )
    if flavor == "sklearn":
        proto = _from_sklearn(_native(model, "estimator"), schema)  # labels as trained
    else:
        proto = (_from_xgboost if flavor == "xgboost" else _from_lightgbm)(model, schema)
        _relabel(proto, model)
    _free_batch_dimension(proto)
    return bytes(proto.SerializeToString())


def quantize_onnx(data: bytes) -> bytes:
    """Dynamic int8 quantization of the graph's weights (MatMul/Gemm; trees are kept as is)."""
    import tempfile
    from pathlib import Path

    quantization = require("onnxruntime.quantization", "quantizing ONNX models")
    with tempfile.TemporaryDirectory(prefix="mloop-quantize-") as tmp:
        source, target = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
        source.write_bytes(data)
        quantization.quantize_dynamic(
            str(source), str(target), weight_type=quantization.QuantType.QInt8
        )
        return target.read_bytes()


def _native(model: Model, attribute: str) -> Any:
    native = getattr(model, attribute, None)
    if native is None:
        raise InvalidInput(
            f"The loaded {type(model).__name__} holds no {attribute} to convert; "
            "register the model with its library's own format."
        )
    return native


def _input_types(schema: Schema, module: Any) -> list[tuple[str, Any]]:
    if schema.all_numeric:
        return [("input", module.FloatTensorType([None, len(schema)]))]
    return [
        (
            c.name,
            module.StringTensorType([None, 1])
            if c.kind == "string"
            else module.FloatTensorType([None, 1]),
        )
        for c in schema.columns
    ]


def _from_sklearn(estimator: Any, schema: Schema) -> Any:
    skl2onnx = require("skl2onnx", "converting scikit-learn models to ONNX")
    types = require("skl2onnx.common.data_types", "converting scikit-learn models to ONNX")
    initial = _input_types(schema, types)
    # A ColumnTransformer that selects columns by name needs one input per column.
    if schema.all_numeric and _selects_by_name(estimator):
        initial = [(c.name, types.FloatTensorType([None, 1])) for c in schema.columns]
    with _tree_missing_flags_as_ints():
        try:
            return skl2onnx.convert_sklearn(_text_gaps_as_empty(estimator), initial_types=initial)
        except Exception as exc:  # the converter's own errors name what it cannot do
            raise InvalidInput(
                f"skl2onnx cannot convert this {type(estimator).__name__}: {exc}"
            ) from exc


def _text_gaps_as_empty(estimator: Any) -> Any:
    """A copy whose text imputers fill ``""`` where the original's fill NaN, for conversion only.

    ONNX string tensors have no missing value, so the onnx flavor sends ``""`` for a
    missing text cell, and skl2onnx converts imputers of text only when their missing
    value is a string. The copy's graph then fills exactly the cells the original fills;
    the comparison that follows checks the answers are the same.
    """
    imputers = [p for p in _fitted_parts(estimator) if _imputes_text_nan(p)]
    if not imputers:
        return estimator
    copied = copy.deepcopy(estimator)
    for part in _fitted_parts(copied):
        if _imputes_text_nan(part):
            part.missing_values = ""
    return copied


def _fitted_parts(estimator: Any) -> Iterator[Any]:
    yield estimator
    for _, step in getattr(estimator, "steps", None) or ():
        yield from _fitted_parts(step)
    for _, part, _ in getattr(estimator, "transformers_", None) or ():
        if hasattr(part, "get_params"):
            yield from _fitted_parts(part)


def _imputes_text_nan(part: Any) -> bool:
    if type(part).__name__ != "SimpleImputer":
        return False
    missing = getattr(part, "missing_values", None)
    statistics = getattr(part, "statistics_", None)
    return (
        isinstance(missing, float)
        and math.isnan(missing)
        and statistics is not None
        and statistics.dtype == object
    )


def _selects_by_name(estimator: Any) -> bool:
    parts = [estimator, *(step for _, step in getattr(estimator, "steps", ()))]
    for part in parts:
        for _, _, columns in getattr(part, "transformers", ()):
            items = columns if isinstance(columns, list | tuple) else [columns]
            if any(isinstance(c, str) for c in items):
                return True
    return False


@contextlib.contextmanager
def _tree_missing_flags_as_ints() -> Iterator[None]:
    """Let skl2onnx 1.20 convert HistGradientBoosting models under onnx >= 1.20.

    Its tree writer passes Python ``False`` for leaves' ``nodes_missing_value_tracks_true``
    and onnx now refuses booleans in an ints attribute, so every HistGradientBoosting
    conversion fails. We coerce the flag to an int while converting; the value is the
    same (0/1), so the graph is what skl2onnx meant to write.
    """
    try:
        from skl2onnx.common import tree_ensemble
    except ImportError:
        yield
        return
    original = tree_ensemble.add_node

    def add_node(*args: Any, nodes_missing_value_tracks_true: Any = 0, **kwargs: Any) -> Any:
        flag = int(nodes_missing_value_tracks_true)
        return original(*args, nodes_missing_value_tracks_true=flag, **kwargs)

    with _PATCH_LOCK:
        tree_ensemble.add_node = add_node
        try:
            yield
        finally:
            tree_ensemble.add_node = original


def _from_xgboost(model: Model, schema: Schema) -> Any:
    onnxmltools = require("onnxmltools", "converting XGBoost models to ONNX")
    types = require("onnxmltools.convert.common.data_types", "converting XGBoost models to ONNX")
    _numeric_only(schema, "XGBoost")
    estimator = getattr(model, "estimator", None)
    booster = estimator.get_booster() if estimator is not None else _native(model, "booster")
    # onnxmltools reads features as f0, f1, ...: a copy without names converts by position.
    booster = booster.copy()
    booster.feature_names = None
    booster.feature_types = None
    try:
        return onnxmltools.convert_xgboost(booster, initial_types=_input_types(schema, types))
    except Exception as exc:
        raise InvalidInput(f"onnxmltools cannot convert this XGBoost model: {exc}") from exc


def _from_lightgbm(model: Model, schema: Schema) -> Any:
    onnxmltools = require("onnxmltools", "converting LightGBM models to ONNX")
    types = require("onnxmltools.convert.common.data_types", "converting LightGBM models to ONNX")
    _numeric_only(schema, "LightGBM")
    booster = _native(model, "booster")
    try:
        return onnxmltools.convert_lightgbm(
            booster, initial_types=_input_types(schema, types), zipmap=False
        )
    except Exception as exc:
        raise InvalidInput(f"onnxmltools cannot convert this LightGBM model: {exc}") from exc


def _numeric_only(schema: Schema, library: str) -> None:
    if not schema.all_numeric:
        text = [c.name for c in schema.columns if c.kind == "string"]
        raise InvalidInput(
            f"{library} models with text columns ({text}) are not converted to ONNX; "
            "only models over numeric columns are."
        )


def _relabel(proto: Any, model: Model) -> None:
    """Write the model's own integer class labels into a graph that counts classes 0..k-1."""
    classes = tuple(model.classes)
    if model.task != "classification" or classes == tuple(range(len(classes))):
        return
    if not all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        raise InvalidInput(
            f"This model's classes {list(classes)[:5]} are text; the ONNX graph of a booster "
            "numbers classes from 0, so it cannot answer with them. Train on labels 0..k-1."
        )
    for node in proto.graph.node:
        if node.op_type.endswith("Classifier"):
            for attribute in node.attribute:
                if attribute.name == "classlabels_int64s":
                    del attribute.ints[:]
                    attribute.ints.extend(classes)


def _free_batch_dimension(proto: Any) -> None:
    """Outputs declared with a fixed first dimension (onnxmltools writes 1) take any batch."""
    for value in proto.graph.output:
        shape = value.type.tensor_type.shape if value.type.HasField("tensor_type") else None
        if shape is not None and len(shape.dim) and shape.dim[0].HasField("dim_value"):
            shape.dim[0].dim_param = "N"

"""Open Inference Protocol (KServe / Triton "v2") request decoding and response encoding.

Supports JSON tensors and the binary tensor data extension (what ``tritonclient``
sends by default). A tabular model takes one input per contract column (as
MLServer's pandas codec does); an all-numeric model also takes one 2-D tensor.
Outputs: ``label`` (BYTES, one per row) and, for classifiers, ``probabilities``
(FP64, rows x classes, class names in the tensor's ``parameters.classes``);
regressors answer ``value`` (FP64).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from mloop.errors import InvalidInput
from mloop.flavors import Predictions
from mloop.serving._runtime import Job

if TYPE_CHECKING:
    from mloop.registry import ModelVersion

__all__ = ["decode_infer", "encode_infer", "model_metadata"]

HEADER = "inference-header-content-length"
_MAX_DIMS = 8

_DTYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}


def _bytes_elements(raw: bytes) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(raw):
        (length,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        out.append(raw[pos : pos + length].decode("utf-8", errors="replace"))
        pos += length
    return out


def _has_null(data: Any) -> bool:
    stack = [data]
    while stack:  # no recursion: the JSON parser admits nesting deeper than Python's stack
        item = stack.pop()
        if item is None:
            return True
        if isinstance(item, list):
            stack.extend(item)
    return False


def _tensor(spec: Mapping[str, Any], binary: memoryview, pos: int) -> tuple[Any, list[int], int]:
    name = spec.get("name")
    datatype = str(spec.get("datatype", "")).upper()
    shape = spec.get("shape")
    if not isinstance(name, str) or not isinstance(shape, list):
        raise InvalidInput(
            "Each v2 input needs 'name', 'shape', 'datatype' and 'data', e.g. "
            '{"name": "age", "shape": [1], "datatype": "FP64", "data": [42.0]}.'
        )
    if len(shape) > _MAX_DIMS or not all(type(d) is int and d >= 0 for d in shape):
        raise InvalidInput(
            f"Input {name!r} has shape {str(shape)[:80]}; a shape is a list of at most "
            f"{_MAX_DIMS} whole numbers from 0, e.g. [3] or [3, 1].",
            input=name,
        )
    if datatype != "BYTES" and datatype not in _DTYPES:
        raise InvalidInput(
            f"Input {name!r} has datatype {datatype!r}; use one of BYTES, {', '.join(_DTYPES)}."
        )
    parameters = spec.get("parameters") or {}
    size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if size is not None:
        if type(size) is not int or not 0 <= size <= len(binary) - pos:
            raise InvalidInput(
                f"Input {name!r} has binary_data_size {str(size)[:40]}, but "
                f"{len(binary) - pos} bytes of binary data are left after the JSON header.",
                input=name,
            )
        chunk = bytes(binary[pos : pos + size])
        pos += size
        try:
            if datatype == "BYTES":
                values: Any = _bytes_elements(chunk)
            else:
                values = np.frombuffer(chunk, dtype=_DTYPES[datatype])
        except (struct.error, ValueError) as exc:
            raise InvalidInput(
                f"Input {name!r}: its {size} binary bytes are not {datatype} elements ({exc}).",
                input=name,
            ) from exc
    else:
        data = spec.get("data")
        if data is None:
            raise InvalidInput(f"Input {name!r} has no 'data' and no binary_data_size.")
        if datatype == "BYTES":
            flat = np.asarray(data, dtype=object).ravel().tolist()
            values = [v.decode() if isinstance(v, bytes) else v for v in flat]
        elif datatype == "BOOL" and _has_null(data):
            # numpy would read JSON null as False: the cells go to the contract as values
            # (None = missing), like records do.
            values = np.asarray(data, dtype=object).ravel().tolist()
        else:
            try:
                # Float tensors read JSON null as NaN, their missing value, at numpy's speed.
                values = np.asarray(data, dtype=_DTYPES[datatype]).ravel()
            except (TypeError, ValueError) as exc:
                if not _has_null(data):  # integers cannot hold null: only then walk the data
                    raise InvalidInput(
                        f"Input {name!r} data is not {datatype}: {exc}.", input=name
                    ) from exc
                values = np.asarray(data, dtype=object).ravel().tolist()
    count = math.prod(shape)
    if len(values) != count:
        raise InvalidInput(
            f"Input {name!r} has shape {shape} ({count} values) but {len(values)} values.",
            input=name,
        )
    return values, [int(s) for s in shape], pos


def decode_infer(
    body: bytes, header_length: int | None, mv: ModelVersion
) -> tuple[Job, dict[str, Any]]:
    """The job and the parsed request (for ``id`` and requested outputs)."""
    head = body if header_length is None else body[:header_length]
    try:
        request = orjson.loads(head)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"The v2 request body is not valid JSON: {exc}.") from exc
    inputs = request.get("inputs") if isinstance(request, dict) else None
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput('A v2 request needs a non-empty "inputs" list.')
    binary = memoryview(body)[header_length or len(body) :]
    pos = 0
    tensors: list[tuple[str, Any, list[int]]] = []
    for spec in inputs:
        if not isinstance(spec, dict):
            raise InvalidInput("Each v2 input must be an object.")
        values, shape, pos = _tensor(spec, binary, pos)
        tensors.append((spec["name"], values, shape))
    schema = mv.schema
    if len(tensors) == 1 and len(tensors[0][2]) == 2 and isinstance(tensors[0][1], np.ndarray):
        _, values, shape = tensors[0]
        numeric = schema is None or all(c.kind in ("float", "integer") for c in schema.columns)
        width = len(schema.columns) if schema is not None else shape[1]
        if numeric and shape[1] == width and (schema is None or tensors[0][0] not in schema.names):
            return Job("tensor", values.reshape(shape).astype(np.float64), shape[0]), request
    columns: dict[str, Any] = {}
    rows: set[int] = set()
    for name, values, shape in tensors:
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise InvalidInput(
                f"Input {name!r} has shape {shape}; send one column per input with shape [rows] "
                "or [rows, 1], or one [rows, features] tensor for an all-numeric model."
            )
        rows.add(shape[0] if shape else 1)
        columns[name] = values
    if len(rows) != 1:
        raise InvalidInput(f"Inputs have different row counts {sorted(rows)}.")
    return Job("columns", columns, rows.pop()), request


def _wants_binary(request: Mapping[str, Any], name: str) -> bool:
    for spec in request.get("outputs") or ():
        if isinstance(spec, dict) and spec.get("name") == name:
            return bool((spec.get("parameters") or {}).get("binary_data", False))
    return bool((request.get("parameters") or {}).get("binary_data_output", False))


def _outputs(p: Predictions) -> list[tuple[str, str, np.ndarray, dict[str, Any]]]:
    if p.task == "regression":
        assert p.values is not None
        return [("value", "FP64", np.asarray(p.values, dtype=np.float64), {})]
    assert p.labels is not None
    labels = np.asarray([str(v) for v in p.labels.tolist()], dtype=object)
    out: list[tuple[str, str, np.ndarray, dict[str, Any]]] = [("label", "BYTES", labels, {})]
    if p.probabilities is not None:
        classes = {"classes": [str(c) for c in p.classes]}
        out.append(("probabilities", "FP64", np.asarray(p.probabilities, np.float64), classes))
    return out


def encode_infer(
    p: Predictions, request: Mapping[str, Any], model: str, version: int
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header length when binary outputs follow it."""
    requested = {s.get("name") for s in request.get("outputs") or () if isinstance(s, dict)}
    outputs: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, datatype, arr, params in _outputs(p):
        if requested and name not in requested:
            continue
        spec: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(arr.shape)}
        if _wants_binary(request, name):
            if datatype == "BYTES":
                raw = b"".join(
                    struct.pack("<I", len(b)) + b for b in (s.encode() for s in arr.tolist())
                )
            else:
                raw = arr.astype("<f8").tobytes()
            spec["parameters"] = {**params, "binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            spec["data"] = arr.ravel().tolist()
            if params:
                spec["parameters"] = params
        outputs.append(spec)
    body: dict[str, Any] = {"model_name": model, "model_version": str(version), "outputs": outputs}
    if "id" in request:
        body["id"] = request["id"]
    head = orjson.dumps(body)
    if not chunks:
        return head, None
    return head + b"".join(chunks), len(head)


def model_metadata(mv: ModelVersion) -> dict[str, Any]:
    """The v2 model metadata document."""
    schema = mv.schema
    inputs = (
        [{"name": c.name, "datatype": c.v2_datatype, "shape": [-1]} for c in schema.columns]
        if schema is not None
        else []
    )
    if mv.task == "regression":
        outputs = [{"name": "value", "datatype": "FP64", "shape": [-1]}]
    else:
        outputs = [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(mv.classes)]},
        ]
    return {
        "name": mv.name,
        "versions": [str(mv.version)],
        "platform": f"mloop-{mv.flavor}",
        "inputs": inputs,
        "outputs": outputs,
        "parameters": {"task": mv.task, "classes": [str(c) for c in mv.classes]},
    }

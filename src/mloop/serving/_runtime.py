"""One batch through one model version: validate every request at once, predict once, fan out.

Requests in a batch may come from different APIs (records, v2 columns, a v2 tensor).
Requests of the same shape are joined and validated with one vectorised contract
call; rejecting violations fail only the request they belong to (rows renumbered
to that request), and one predict call serves every remaining row.

When every contract column is numeric and the model offers ``predict_array``, the
contract produces one float matrix and no DataFrame is built (the frame costs more
than the validation itself for a one-row request).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import pandas as pd

from mloop.contracts import invalid_input
from mloop.errors import (
    MloopError,
    ModelFailed,
    OperatorError,
    RetryableError,
    UserError,
)
from mloop.flavors import ArrayModel, Predictions

if TYPE_CHECKING:
    from mloop.contracts import Schema, Violation
    from mloop.registry import Predictor

_log = logging.getLogger("mloop.serving")

__all__ = ["Job", "run_batch", "uses_matrix", "warmup_job"]

JobKind = Literal["records", "columns", "tensor"]


@dataclass(slots=True)
class Job:
    """One request's rows: records, a mapping of columns, or a 2-D numeric tensor."""

    kind: JobKind
    data: Any
    rows: int


def _signature(job: Job) -> tuple[Any, ...]:
    if job.kind == "columns":
        return ("columns", tuple(job.data))
    return (job.kind,)


def _join(jobs: Sequence[Job], schema: Schema | None) -> Any:
    kind = jobs[0].kind
    if kind == "records":
        if len(jobs) == 1:
            return jobs[0].data
        return [r for j in jobs for r in j.data]
    if kind == "columns":
        if len(jobs) == 1:
            return jobs[0].data
        return {k: [v for j in jobs for v in j.data[k]] for k in jobs[0].data}
    tensor = jobs[0].data if len(jobs) == 1 else np.concatenate([j.data for j in jobs])
    names = schema.names if schema is not None else [f"f{i}" for i in range(tensor.shape[1])]
    return {name: tensor[:, i] for i, name in enumerate(names)}


def uses_matrix(predictor: Predictor) -> bool:
    """True when batches go to ``predict_array`` as one float matrix (no DataFrame)."""
    schema = predictor.schema
    return schema is not None and schema.all_numeric and isinstance(predictor.model, ArrayModel)


def _validate(
    predictor: Predictor, jobs: Sequence[Job], matrix: bool
) -> tuple[Any, list[MloopError | None]]:
    """One frame (or float matrix) of all rows, and per job the error that rejects it."""
    schema = predictor.schema
    data = _join(jobs, schema)
    errors: list[MloopError | None] = [None] * len(jobs)
    if schema is None:
        return pd.DataFrame(data), errors
    frame, violations = schema.coerce_matrix(data) if matrix else schema.coerce(data)
    rejects = [v for v in violations if v.severity == "reject"]
    if not rejects:
        return frame, errors
    starts = np.cumsum([0] + [j.rows for j in jobs])
    per_job: dict[int, list[Violation]] = {}
    for v in rejects:
        if v.row is None:
            for i in range(len(jobs)):
                per_job.setdefault(i, []).append(v)
        else:
            i = int(np.searchsorted(starts, v.row, side="right")) - 1
            per_job.setdefault(i, []).append(replace(v, row=v.row - int(starts[i])))
    for i, found in per_job.items():
        errors[i] = invalid_input(found)
    return frame, errors


def run_batch(
    predictor: Predictor, jobs: Sequence[Job], *, matrix: bool | None = None
) -> list[Predictions | BaseException]:
    """Predict every job; each gets its own ``Predictions`` or the error that stops it.

    ``matrix`` is :func:`uses_matrix` of the predictor (computed when not given; callers
    on the hot path compute it once per loaded version).
    """
    if matrix is None:
        matrix = uses_matrix(predictor)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault(_signature(job), []).append(i)
    results: list[Predictions | BaseException] = [None] * len(jobs)  # type: ignore[list-item]
    frames: list[Any] = []
    spans: list[tuple[int, int, int]] = []  # (job index, start row, stop row) in the joined frame
    offset = 0
    for members in groups.values():
        try:
            frame, errors = _validate(predictor, [jobs[i] for i in members], matrix)
        except MloopError as exc:
            for i in members:
                results[i] = exc
            continue
        keep: list[int] = []
        row = 0
        for i, err in zip(members, errors, strict=True):
            n = jobs[i].rows
            if err is not None:
                results[i] = err
            else:
                keep.extend(range(row, row + n))
                spans.append((i, offset, offset + n))
                offset += n
            row += n
        if keep:
            if len(keep) == len(frame):
                frames.append(frame)
            else:
                frames.append(frame[keep] if matrix else frame.iloc[keep])
    if not frames:
        return results
    if matrix:
        joined = frames[0] if len(frames) == 1 else np.concatenate(frames)
    else:
        joined = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    try:
        predictions = _predict(predictor, joined, matrix)
    except MloopError as exc:  # ModelFailed, or a flavor's own check
        if len(spans) == 1:
            results[spans[0][0]] = exc
            return results
        # One request's rows broke the model: each request of the batch on its own, so
        # only the requests whose rows fail get the error.
        for i, start, stop in spans:
            part = joined[start:stop] if matrix else cast(pd.DataFrame, joined).iloc[start:stop]
            try:
                results[i] = _predict(predictor, part, matrix)
            except MloopError as own:
                results[i] = own
        return results
    for i, start, stop in spans:
        results[i] = (
            predictions if (start == 0 and stop == len(joined)) else predictions.take(start, stop)
        )
    return results


_logged: dict[tuple[str, str], float] = {}
_TRACEBACK_EVERY_S = 60.0


def _log_failure(ref: str, exc: Exception) -> None:
    """The traceback once a minute per version and exception type; a short line otherwise.

    A model that fails on a third of its requests would otherwise write a traceback per
    request and make logging the bottleneck of the server.
    """
    key = (ref, type(exc).__name__)
    now = time.monotonic()
    if now - _logged.get(key, -_TRACEBACK_EVERY_S) >= _TRACEBACK_EVERY_S:
        _logged[key] = now
        _log.warning("model %s raised while predicting", ref, exc_info=exc)
    else:
        _log.info("model %s raised %s: %s", ref, type(exc).__name__, exc)


def _predict(predictor: Predictor, data: Any, matrix: bool) -> Predictions:
    """The model's answer; anything the model's own code raises becomes ``ModelFailed``."""
    try:
        if matrix:
            return predictor.model.predict_array(data)  # type: ignore[attr-defined,no-any-return]
        return predictor.model.predict(data)
    except (UserError, OperatorError, RetryableError):
        raise
    except Exception as exc:  # the model's code, or its output failing mloop's checks
        version = predictor.version
        _log_failure(version.ref, exc)
        raise ModelFailed(
            f"Model {version.ref} failed while predicting: {type(exc).__name__}: {exc}. "
            "The model itself raised; whoever deployed it must look at it (the server log "
            "has the traceback).",
            model=version.name,
            version=version.version,
            exception=type(exc).__name__,
        ) from exc


def _sample_value(column: Any) -> Any:
    kind = column.kind
    if kind in ("float", "integer"):
        lo, hi = column.min, column.max
        mid = 0.0 if lo is None or hi is None else (lo + hi) / 2
        return int(mid) if kind == "integer" else float(mid)
    if kind == "boolean":
        return False
    if kind == "datetime":
        return "2024-01-01T00:00:00"
    cats = column.categories
    return cats[0] if cats else ""


def warmup_job(predictor: Predictor) -> Job | None:
    """A one-row request built from the contract, or None when the model has none."""
    schema = predictor.schema
    if schema is None:
        return None
    record = {c.name: _sample_value(c) for c in schema.columns}
    return Job("records", [record], 1)

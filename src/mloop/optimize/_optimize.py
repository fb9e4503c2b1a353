"""Convert a registered version to ONNX, prove it answers the same, and register it or refuse.

The proof (agreement on the reference rows, on the rows with missing values, and the
speed of both models through serving's path) goes into the new version's metrics and
lineage; a conversion that disagrees beyond the tolerance is refused with those numbers.
The new version keeps its parent's contract and reference profile and is not aliased:
it reaches traffic through a normal rollout (``mloop deploy``).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mloop.contracts import Schema
from mloop.errors import InvalidInput
from mloop.flavors import Model, get_flavor
from mloop.optimize._compare import Agreement, Tolerance, compare_predictions, judge
from mloop.optimize._convert import convert_to_onnx, quantize_onnx
from mloop.optimize._reference import rows_from_profile, with_missing_probes
from mloop.optimize._speed import Speed, measure_speed, serve_predict
from mloop.registry import ModelVersion, Registry

__all__ = ["OptimizeResult", "optimize_version"]

_ENVIRONMENT_KEYS = ("git_commit", "python", "libraries")  # describe the new registration
_SPEED_ROWS = 1_000


@dataclass(frozen=True)
class OptimizeResult:
    """What ``optimize_version`` found, and the new version when it was accepted."""

    source: str
    target: str
    quantized: bool
    reference: str
    agreement: Agreement
    tolerance: Tolerance
    problems: tuple[str, ...]
    original_speed: Speed
    candidate_speed: Speed
    size_bytes: int
    version: ModelVersion | None = field(default=None, compare=False)

    @property
    def accepted(self) -> bool:
        """True when the candidate answers like the original within the tolerance."""
        return not self.problems

    @property
    def one_row_speedup(self) -> float:
        """How many times faster the candidate answers one row."""
        return _ratio(self.original_speed.one_row_ms, self.candidate_speed.one_row_ms)

    @property
    def batch_speedup(self) -> float:
        """How many times faster the candidate answers a batch of 64."""
        return _ratio(self.original_speed.batch_ms, self.candidate_speed.batch_ms)

    def proof(self) -> dict[str, Any]:
        """JSON-ready record of the check, stored in the new version's lineage."""
        return {
            "source": self.source,
            "target": self.target,
            "quantized": self.quantized,
            "reference": self.reference,
            "accepted": self.accepted,
            "problems": list(self.problems),
            "tolerance": asdict(self.tolerance),
            "agreement": self.agreement.to_dict(),
            "speed": {
                "original": self.original_speed.to_dict(),
                "candidate": self.candidate_speed.to_dict(),
                "one_row_speedup": self.one_row_speedup,
                "batch_speedup": self.batch_speedup,
            },
            "size_bytes": self.size_bytes,
        }

    def metrics(self) -> dict[str, float]:
        """The proof's figures as version metrics (``optimize_*``)."""
        a = self.agreement
        figures = {
            "optimize_rows_compared": a.rows,
            "optimize_missing_rows_compared": a.missing_rows,
            "optimize_label_agreement": a.label_agreement,
            "optimize_missing_label_agreement": a.missing_label_agreement,
            "optimize_max_probability_diff": a.max_probability_diff,
            "optimize_max_value_diff": a.max_value_diff,
            "optimize_one_row_ms": self.candidate_speed.one_row_ms,
            "optimize_batch64_ms": self.candidate_speed.batch_ms,
            "optimize_one_row_speedup": self.one_row_speedup,
            "optimize_batch64_speedup": self.batch_speedup,
        }
        return {k: float(v) for k, v in figures.items() if v is not None}


def optimize_version(
    registry: Registry,
    ref: str,
    *,
    to: str = "onnx",
    quantize: bool = False,
    reference: pd.DataFrame | None = None,
    reference_name: str = "given rows",
    tolerance: Tolerance | None = None,
    max_rows: int = 5_000,
    register: bool = True,
    actor: str | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> OptimizeResult:
    """Convert ``ref`` to ``to`` ("onnx"), compare it with the original, register it if it agrees.

    ``reference`` holds input rows to compare on (default: rows drawn from the version's
    reference profile); rows the contract rejects are left out, and copies of rows with
    each nullable column missing are added.
    """
    if to != "onnx":
        raise InvalidInput(f"mloop optimizes to 'onnx' only; got --to {to!r}.")
    tolerance = tolerance or Tolerance()
    mv = registry.get(ref)
    schema = mv.schema
    if schema is None:
        raise InvalidInput(
            f"Version {mv.ref} has no input contract (registered without training data), so "
            "there is nothing to check a conversion on. Register it with --training-data."
        )
    if mv.flavor == "onnx":
        raise InvalidInput(f"Version {mv.ref} is already an ONNX model.")
    rows, where = _reference_rows(mv, schema, reference, reference_name, max_rows)
    original = registry.load(mv).model
    data = convert_to_onnx(original, mv.flavor, schema)
    if quantize:
        data = quantize_onnx(data)
    candidate = _load_onnx(data)

    probed = with_missing_probes(rows, schema)
    missing = probed[list(schema.names)].isna().any(axis=1).to_numpy()
    agreement = compare_predictions(
        serve_predict(original, schema, probed), serve_predict(candidate, schema, probed), missing
    )
    timed = rows.iloc[:_SPEED_ROWS]
    result = OptimizeResult(
        source=mv.ref,
        target=to,
        quantized=quantize,
        reference=where,
        agreement=agreement,
        tolerance=tolerance,
        problems=tuple(judge(agreement, tolerance)),
        original_speed=measure_speed(original, schema, timed, clock=clock),
        candidate_speed=measure_speed(candidate, schema, timed, clock=clock),
        size_bytes=len(data),
    )
    registry.record_event(
        mv.name, "version.optimize", {"version": mv.version, **result.proof()}, actor=actor
    )
    if not result.accepted or not register:
        return result
    lineage = {k: v for k, v in mv.lineage.items() if k not in _ENVIRONMENT_KEYS}
    new = registry.register(
        data,
        mv.name,
        flavor="onnx",
        contract=schema,
        reference_profile=mv.profile,
        metrics={**mv.metrics, **result.metrics()},
        params=dict(mv.params),
        tags={"optimized_from": mv.ref, "optimized_to": to + ("-int8" if quantize else "")},
        description=(
            f"{mv.ref} converted to ONNX{' and quantized' if quantize else ''}; answers "
            f"checked on {agreement.rows} rows ({where})."
        ),
        actor=actor,
        lineage={**lineage, "optimized_from": mv.ref, "optimization": result.proof()},
    )
    return replace(result, version=new)


def _reference_rows(
    mv: ModelVersion,
    schema: Schema,
    given: pd.DataFrame | None,
    name: str,
    max_rows: int,
) -> tuple[pd.DataFrame, str]:
    if given is None:
        if mv.profile is None:
            raise InvalidInput(
                f"Version {mv.ref} has no reference profile to draw rows from; pass reference "
                "rows (CLI: --data FILE)."
            )
        return rows_from_profile(schema, mv.profile, max_rows), "drawn from the reference profile"
    rows = given[[c for c in given.columns if str(c) in schema.name_set]]
    if len(rows) > max_rows:
        keep = np.sort(np.random.default_rng(0).choice(len(rows), max_rows, replace=False))
        rows = rows.iloc[keep]
    rows = rows.reset_index(drop=True)
    rejected = {v.row for v in schema.validate(rows) if v.severity == "reject"}
    if None in rejected:  # a whole column is missing or unusable
        problems = [v.message for v in schema.validate(rows.head(1)) if v.row is None]
        raise InvalidInput(f"The reference rows do not fit the contract: {' '.join(problems)}")
    if rejected:
        rows = rows.drop(index=sorted(r for r in rejected if r is not None)).reset_index(drop=True)
    if rows.empty:
        raise InvalidInput("No reference row meets the contract; nothing to compare on.")
    return rows, name


def _load_onnx(data: bytes) -> Model:
    """The candidate as serving will run it: saved and loaded by the onnx flavor."""
    flavor = get_flavor("onnx")
    with tempfile.TemporaryDirectory(prefix="mloop-optimize-") as tmp:
        folder = Path(tmp)
        meta = flavor.save(data, folder)
        return flavor.load(folder, meta)


def _ratio(before: float, after: float) -> float:
    return before / max(after, 1e-9)

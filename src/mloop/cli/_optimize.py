"""``mloop optimize``: convert a version to ONNX, prove it answers the same, register or refuse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mloop.cli._context import state
from mloop.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

    from mloop.optimize import OptimizeResult
    from mloop.registry import ModelVersion, Registry

__all__ = ["optimize"]


def optimize(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(help="The version to optimize: name:version or name@alias.")
    ],
    to: Annotated[str, typer.Option("--to", help="Target format (onnx).")] = "onnx",
    quantize: Annotated[
        bool, typer.Option(help="Also quantize weights to int8 (helps linear layers, not trees).")
    ] = False,
    data: Annotated[
        Path | None,
        typer.Option(
            help="CSV/Parquet/JSONL input rows to compare on (default: the version's pipeline "
            "dataset, else rows drawn from its reference profile)."
        ),
    ] = None,
    rows: Annotated[int, typer.Option(help="At most this many reference rows.")] = 5_000,
    min_label_agreement: Annotated[
        float,
        typer.Option(help="Refuse below this share of equal labels (also on rows with gaps)."),
    ] = 0.999,
    max_probability_diff: Annotated[
        float, typer.Option(help="Refuse above this largest probability difference.")
    ] = 1e-3,
    max_value_diff: Annotated[
        float,
        typer.Option(help="Regression: refuse above this difference, as a share of the spread."),
    ] = 1e-3,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and report, but do not register.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the proof as JSON.")] = False,
) -> None:
    """Convert to ONNX, compare with the original on reference rows, register it or refuse (exit 1)."""
    from mloop.optimize import Tolerance, optimize_version

    if to != "onnx":
        raise typer.BadParameter(f"{to!r} is not a target; use onnx.", param_hint="--to")
    if rows < 1:
        raise typer.BadParameter("must be at least 1.", param_hint="--rows")
    registry = state(ctx).registry
    mv = registry.get(ref)
    reference, where = _reference(registry, mv, data)
    result = optimize_version(
        registry,
        mv.ref,
        to=to,
        quantize=quantize,
        reference=reference,
        reference_name=where,
        tolerance=Tolerance(min_label_agreement, max_probability_diff, max_value_diff),
        max_rows=rows,
        register=not dry_run,
    )
    if as_json:
        body = result.proof()
        body["registered"] = None if result.version is None else result.version.ref
        typer.echo(json.dumps(body, indent=2))
    else:
        _report(result)
    if not result.accepted:
        raise typer.Exit(1)


def _reference(
    registry: Registry, mv: ModelVersion, data: Path | None
) -> tuple[pd.DataFrame | None, str]:
    import pandas as pd

    if data is not None:
        from mloop.cli._io import read_chunks
        from mloop.contracts import parse_text_columns

        if data.suffix.lower() == ".csv":
            if not data.is_file():
                raise InvalidInput(f"Input file {data} does not exist.")
            text = pd.read_csv(data, dtype=str, keep_default_na=False, na_values=[""])
            frame = text if mv.schema is None else parse_text_columns(text, mv.schema)
        else:
            frame = pd.concat(list(read_chunks(data, 100_000)), ignore_index=True)
        return frame, str(data)
    digest = mv.lineage.get("dataset_sha256")
    if digest:
        from mloop.pipelines import load_snapshot

        return load_snapshot(registry.artifacts, str(digest)), f"pipeline dataset {digest[:12]}"
    return None, "drawn from the reference profile"


def _report(result: OptimizeResult) -> None:
    a = result.agreement
    verdict = "answers the same" if result.accepted else "does NOT answer the same"
    kind = "ONNX (int8)" if result.quantized else "ONNX"
    typer.echo(
        f"{result.source} -> {kind}: {verdict} on {a.rows:,} rows ({result.reference}; "
        f"{a.missing_rows:,} with missing values)"
    )
    if a.task == "classification":
        typer.echo(
            f"  labels agree        {_pct(a.label_agreement)}"
            f"   rows with missing values: {_pct(a.missing_label_agreement)}"
        )
        typer.echo(
            f"  max prob. diff      {_num(a.max_probability_diff)}"
            f"   rows with missing values: {_num(a.missing_max_probability_diff)}"
        )
    else:
        typer.echo(
            f"  max value diff      {_num(a.max_value_diff)}"
            f"   (spread of predictions: {_num(a.value_scale)})"
        )
    o, c = result.original_speed, result.candidate_speed
    typer.echo(
        f"  one row             {o.one_row_ms:.3f} ms -> {c.one_row_ms:.3f} ms "
        f"({result.one_row_speedup:.1f}x)"
    )
    typer.echo(
        f"  batch of {c.batch_rows}         {o.batch_ms:.3f} ms -> {c.batch_ms:.3f} ms "
        f"({result.batch_speedup:.1f}x)"
    )
    if not result.accepted:
        typer.echo("Refused: " + "; ".join(result.problems) + ".")
        if a.worst_rows:
            typer.echo(f"  rows that differ most: {', '.join(map(str, a.worst_rows))}")
        return
    if result.version is None:
        typer.echo("Not registered (--dry-run).")
        return
    new = result.version.ref
    typer.echo(
        f"Registered {new} (onnx, {result.size_bytes:,} bytes) with this proof in its "
        f"metrics and lineage. Roll it out with: mloop deploy {new}"
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"

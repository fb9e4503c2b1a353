"""``mloop contract export`` and ``mloop contract check``: the input contract as a standard document.

``check`` needs no registry: it reads the exported document and the data file only, so a
data owner can run it on their own machine before sending anything.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mloop.cli._context import state
from mloop.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

    from mloop.contracts import Schema, Violation

__all__ = ["contract_app"]

contract_app = typer.Typer(
    help="Export a model's input contract as JSON Schema or a Frictionless Table Schema, "
    "and check data files against it (no registry needed).",
    no_args_is_help=True,
)

_CHUNK_ROWS = 50_000
_SHOWN = 50


@contract_app.command("export")
def export(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="name@alias or name:version.")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="json-schema (draft 2020-12) or frictionless.")
    ] = "json-schema",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            help="Also make ranges and categories that mloop only flags hard constraints."
        ),
    ] = False,
) -> None:
    """Write the input contract of a registered version in a standard format."""
    from mloop.contracts import export_contract

    if fmt not in ("json-schema", "frictionless"):
        raise typer.BadParameter(
            f"{fmt!r} is not a format; use json-schema or frictionless.", param_hint="--format"
        )
    mv = state(ctx).registry.get(ref)
    if mv.schema is None:
        raise InvalidInput(
            f"Version {mv.ref} has no input contract: it was registered without training data. "
            f"Register it again with --training-data to record one."
        )
    doc = export_contract(mv.schema, fmt, title=f"{mv.ref} input", strict=strict)  # type: ignore[arg-type]
    doc["x-mloop-model"] = mv.ref
    text = json.dumps(doc, indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    typer.echo(f"Wrote the {fmt} contract of {mv.ref} to {output}.", err=True)


@contract_app.command("check")
def check(
    path: Annotated[Path, typer.Argument(help="CSV, Parquet or JSONL file to check.")],
    contract: Annotated[
        Path, typer.Option("--contract", "-c", help="Contract written by mloop contract export.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Validate a data file against an exported contract; exit 1 if anything is rejected."""
    from mloop.contracts import schema_from_document

    schema = schema_from_document(_read_document(contract))
    rows, violations = _check_file(path, schema)
    rejects = [v for v in violations if v.severity == "reject"]
    flags = [v for v in violations if v.severity == "flag"]
    if as_json:
        body = {
            "file": str(path),
            "rows": rows,
            "valid": not rejects,
            "rejected": len(rejects),
            "flagged": len(flags),
            "by_field": _by_field(violations),
            "violations": [v.to_dict() for v in violations[:1000]],
        }
        typer.echo(json.dumps(body, indent=2))
    else:
        for v in violations[:_SHOWN]:
            typer.echo(f"{'error' if v.severity == 'reject' else 'warning'}: {v.message}")
        if len(violations) > _SHOWN:
            typer.echo(f"... {len(violations) - _SHOWN} more (use --json for the full list)")
        verdict = "FAILS the contract" if rejects else "meets the contract"
        typer.echo(f"{path}: {rows} rows {verdict}: {len(rejects)} rejected, {len(flags)} flagged.")
    if rejects:
        raise typer.Exit(1)


def _read_document(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidInput(
            f"Contract file {path} does not exist; write one with: "
            "mloop contract export NAME@ALIAS -o contract.json"
        ) from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"Contract file {path} is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidInput(f"Contract file {path} must hold a JSON object.")
    return doc


def _check_file(path: Path, schema: Schema) -> tuple[int, list[Violation]]:
    """Rows read and every violation, with rows counted from the file's first data row."""
    rows = 0
    found: list[Violation] = []
    whole_column: set[tuple[str, str]] = set()
    for chunk in _chunks(path, schema):
        for v in schema.validate(chunk):
            if v.row is None:  # a missing or unknown column: said once, not once per chunk
                if (v.field, v.kind) in whole_column:
                    continue
                whole_column.add((v.field, v.kind))
                found.append(v)
            else:
                found.append(dataclasses.replace(v, row=v.row + rows))
        rows += len(chunk)
    return rows, found


def _chunks(path: Path, schema: Schema) -> Iterator[pd.DataFrame]:
    import pandas as pd

    from mloop.cli._io import read_chunks
    from mloop.contracts import parse_text_columns

    if path.suffix.lower() != ".csv":
        yield from read_chunks(path, _CHUNK_ROWS)
        return
    if not path.is_file():
        raise InvalidInput(f"Input file {path} does not exist.")
    try:
        # Text as written, only empty cells missing (the contract's missingValues): the
        # contract, not pandas' guessing, decides what each column holds.
        reader = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=[""], chunksize=_CHUNK_ROWS
        )
        for chunk in reader:
            yield parse_text_columns(chunk, schema)
    except (ValueError, pd.errors.ParserError) as exc:
        raise InvalidInput(f"Could not read {path} as CSV: {exc}") from exc


def _by_field(violations: list[Violation]) -> dict[str, dict[str, int]]:
    counts: Counter[tuple[str, str]] = Counter((v.field, v.kind) for v in violations)
    out: dict[str, dict[str, int]] = {}
    for (field, kind), n in sorted(counts.items()):
        out.setdefault(field, {})[kind] = n
    return out

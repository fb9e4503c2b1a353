"""``mloop models``, ``mloop alias``, ``mloop register`` and ``mloop predict``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mloop.cli._context import state, when
from mloop.cli._table import Table, make_console

if TYPE_CHECKING:
    pass
from mloop.errors import InvalidInput

__all__ = ["alias_app", "models_app", "predict", "register"]

console = make_console()
models_app = typer.Typer(help="List, inspect and delete registered models.", no_args_is_help=True)
alias_app = typer.Typer(
    help="Move, remove and audit aliases such as 'production'.", no_args_is_help=True
)


def _metrics(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()))


@models_app.command("list")
def list_models(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every registered model with its latest version and aliases."""
    found = state(ctx).registry.list_models()
    if as_json:
        rows = [
            {"name": m.name, "latest_version": m.latest_version, "aliases": dict(m.aliases)}
            for m in found
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not found:
        console.print("No models registered yet. Try: mloop demo")
        return
    table = Table("model", "latest", "aliases", "created")
    for m in found:
        aliases = ", ".join(f"{a}→{v}" for a, v in sorted(m.aliases.items()))
        table.add_row(m.name, str(m.latest_version or "-"), aliases, when(m.created_at))
    console.print(table)


@models_app.command("show")
def show_model(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Model name, or one version: name:3, name@alias.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Versions, aliases, what serves now, and the lineage and contract of one version."""
    from mloop.registry import parse_ref
    from mloop.rollout import Rollouts

    registry = state(ctx).registry
    parsed = parse_ref(ref)
    focus = registry.get(ref) if parsed.version or parsed.alias else None
    versions = registry.versions(parsed.name)
    focus = focus or versions[-1]
    rollout = Rollouts(registry).serving(parsed.name)
    if as_json:
        body = {
            "name": parsed.name,
            "versions": [v.summary() for v in versions],
            "rollout": rollout,
            "version": {
                **focus.summary(),
                "contract": None if focus.schema is None else focus.schema.to_dict(),
            },
        }
        typer.echo(json.dumps(body, indent=2, default=str))
        return
    table = Table(
        "version", "aliases", "flavor", "task", "metrics", "created", "by", title=parsed.name
    )
    for v in versions:
        table.add_row(
            str(v.version),
            ", ".join(v.aliases),
            v.flavor,
            v.task,
            _metrics(dict(v.metrics)),
            when(v.created_at),
            v.created_by,
        )
    console.print(table)
    if rollout is not None:
        console.print(f"[bold]Serving now:[/bold] {rollout['serving']}")
    lineage = dict(focus.lineage)
    console.print(f"[bold]Lineage of {focus.ref}[/bold]")
    for key in ("training_rows", "training_data_sha256", "git_commit", "python"):
        if lineage.get(key) is not None:
            console.print(f"  {key}: {lineage[key]}")
    libs = lineage.get("libraries") or {}
    if libs:
        console.print("  libraries: " + ", ".join(f"{k} {v}" for k, v in sorted(libs.items())))
    if focus.schema is not None:
        cols = ", ".join(f"{c.name}:{c.dtype}" for c in focus.schema.columns)
        console.print(f"  contract: {cols}")
    if focus.classes:
        console.print(f"  classes: {', '.join(map(str, focus.classes))}")


@models_app.command("delete")
def delete_version(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version to delete.")],
) -> None:
    """Delete one version (refused while an alias points at it)."""
    state(ctx).registry.delete_version(name, version)
    console.print(f"Deleted {name}:{version}.")


@alias_app.command("set")
def set_alias(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Argument(help="Alias, e.g. production.")],
    version: Annotated[int, typer.Argument(help="Version the alias points at.")],
    reason: Annotated[str, typer.Option(help="Why, for the audit trail.")] = "",
) -> None:
    """Point NAME@ALIAS at VERSION (atomic, audited)."""
    previous = state(ctx).registry.set_alias(name, alias, version, reason=reason)
    was = f" (was {previous})" if previous is not None else ""
    console.print(f"{name}@{alias} → {version}{was}")


@alias_app.command("rm")
def remove_alias(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Argument(help="Alias to remove.")],
) -> None:
    """Remove NAME@ALIAS."""
    previous = state(ctx).registry.remove_alias(name, alias)
    console.print(f"Removed {name}@{alias} (was {previous}).")


@alias_app.command("history")
def alias_history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The audit trail of a model: registrations, alias moves, deletions."""
    events = state(ctx).registry.history(name)
    if as_json:
        typer.echo(json.dumps(events, indent=2, default=str))
        return
    table = Table("when", "actor", "action", "details", title=f"history of {name}")
    for event in events:
        table.add_row(
            when(event["at"]), event["actor"], event["action"], json.dumps(event["details"])
        )
    console.print(table)


def _read_training(path: Path | None, target: str | None) -> tuple[Any, Any]:
    import pandas as pd

    if path is None:
        return None, None
    from mloop.cli._io import read_chunks

    frame = pd.concat(list(read_chunks(path, 100_000)), ignore_index=True)
    if target is None:
        return frame, None
    if target not in frame.columns:
        raise InvalidInput(
            f"--target {target!r} is not a column of {path}; columns: {', '.join(frame.columns)}."
        )
    return frame.drop(columns=[target]), frame[target].to_numpy()


def register(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(
            help="Model file (.skops, .onnx, .json, .txt, .pkl) or MLflow model folder."
        ),
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="Model name.")],
    training_data: Annotated[
        Path | None,
        typer.Option(
            help="CSV/Parquet/JSONL the model was trained on (gives the contract and profile)."
        ),
    ] = None,
    target: Annotated[str | None, typer.Option(help="Label column in --training-data.")] = None,
    alias: Annotated[str | None, typer.Option(help="Alias to point at the new version.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="key=value, repeatable.")] = None,
    flavor: Annotated[
        str | None, typer.Option(help="Force a flavor instead of detecting it.")
    ] = None,
    trust: Annotated[
        bool,
        typer.Option(
            help="Allow pickle/joblib files (unpickling runs code: only for files you trust)."
        ),
    ] = False,
) -> None:
    """Register a model file or an MLflow model folder as a new version."""
    from mloop.flavors import load_artifact

    tags = dict(item.split("=", 1) for item in (tag or []) if "=" in item)
    model = load_artifact(path, trust=trust)
    frame, y = _read_training(training_data, target)
    mv = state(ctx).registry.register(
        model,
        name,
        training_data=frame,
        target=y,
        alias=alias,
        tags=tags,
        flavor=flavor,
        trust=trust,
        lineage={"source": str(path)},
    )
    at = f" and {name}@{alias}" if alias else ""
    console.print(f"Registered {mv.ref} ({mv.flavor}, {mv.task}){at}.")


def predict(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="name, name@alias or name:version")],
    input: Annotated[
        str,
        typer.Option(
            "--input",
            "-i",
            help="CSV, Parquet or JSONL file; or Parquet partitions: a folder, a glob or a "
            "URL such as s3://bucket/scores/*.parquet.",
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where predictions go (.parquet, .csv, .jsonl).")
    ],
    batch_size: Annotated[int, typer.Option(help="Rows per predict call.")] = 10_000,
    keep_columns: Annotated[
        bool, typer.Option(help="Copy the input columns to the output.")
    ] = False,
    engine: Annotated[
        str, typer.Option(help="local: this process; ray: Ray Data workers (the ray extra).")
    ] = "local",
    workers: Annotated[int, typer.Option(help="Ray scoring workers (one model load each).")] = 1,
) -> None:
    """Batch-score a file or Parquet partitions with a registered model, with a progress bar."""
    if engine not in ("local", "ray"):
        raise InvalidInput(f"Unknown engine {engine!r}; use local or ray.")
    if engine == "ray" or not Path(input).is_file():
        _predict_partitions(ctx, ref, input, output, engine, workers, batch_size, keep_columns)
        return
    _predict_file(ctx, ref, Path(input), output, batch_size, keep_columns)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _predict_partitions(
    ctx: typer.Context,
    ref: str,
    sources: str,
    output: Path,
    engine: str,
    workers: int,
    batch_size: int,
    keep_columns: bool,
) -> None:
    import pyarrow.parquet as pq

    from mloop.batch import parquet_paths, score_partitions

    if keep_columns:
        raise InvalidInput("--keep-columns works with one input file, not with partitions.")
    if output.suffix.lower() not in (".parquet", ".pq"):
        raise InvalidInput(f"Partitions are scored into one Parquet file; got {output}.")
    paths = parquet_paths(sources)
    total = sum(pq.ParquetFile(p).metadata.num_rows for p in paths)
    with _progress() as progress:
        task = progress.add_task("predict", total=total)
        done = score_partitions(
            state(ctx).settings,
            ref,
            paths,
            output,
            engine=engine,
            workers=workers,
            batch_rows=batch_size,
            progress=lambda n: progress.update(task, advance=n),
        )
    console.print(f"Wrote {done} predictions of {ref} from {len(paths)} partitions to {output}.")


def _predict_file(
    ctx: typer.Context, ref: str, input: Path, output: Path, batch_size: int, keep_columns: bool
) -> None:
    import pandas as pd

    from mloop.batch import predictions_frame
    from mloop.cli._io import TableWriter, count_rows, read_chunks

    predictor = state(ctx).registry.load(ref)
    total = count_rows(input)
    writer = TableWriter(output)
    done = 0
    with _progress() as progress:
        task = progress.add_task("predict", total=total)
        for chunk in read_chunks(input, batch_size):
            try:
                predictions = predictor.predict(chunk)
            except InvalidInput as exc:
                exc.message = f"Rows {done}..{done + len(chunk) - 1}: {exc.message}"
                exc.args = (exc.message,)
                raise
            out = predictions_frame(predictions)
            if keep_columns:
                out = pd.concat([chunk.reset_index(drop=True), out], axis=1)
            writer.write(out)
            done += len(chunk)
            progress.update(task, advance=len(chunk))
    writer.close()
    console.print(f"Wrote {done} predictions of {predictor.version.ref} to {output}.")

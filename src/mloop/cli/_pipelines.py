"""``mloop pipelines``, ``mloop runs`` and ``mloop retrain``: the retraining loop from the shell.

The lead wires them in ``_main.py``::

    app.add_typer(pipelines_app, name="pipelines")
    app.add_typer(runs_app, name="runs")
    app.command("retrain")(retrain)
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from mloop.cli._context import state, when
from mloop.cli._table import Table, make_console
from mloop.config import Settings
from mloop.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from mloop.pipelines import Pipeline, Run, Runner
    from mloop.registry import Registry

__all__ = ["pipelines_app", "retrain", "runs_app"]

console = make_console()
pipelines_app = typer.Typer(help="Declare and list retraining pipelines.", no_args_is_help=True)
runs_app = typer.Typer(
    help="Inspect pipeline runs: steps, reports, datasets.", no_args_is_help=True
)


def _importable_cwd() -> None:
    # Pipelines live in the user's project: import them from where mloop runs.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def _configured(settings: Settings, registry: Registry) -> dict[str, Pipeline]:
    from mloop.pipelines import configured_pipelines

    return configured_pipelines(settings, registry)


def _runner(settings: Settings, registry: Registry) -> Runner:
    from mloop.server import build_runner

    return build_runner(settings, registry)


@pipelines_app.command("add")
def add(
    ctx: typer.Context,
    path: Annotated[str, typer.Argument(help="Where the Pipeline lives: package.module:attr")],
    name: Annotated[str | None, typer.Option(help="Register under another name.")] = None,
) -> None:
    """Register a pipeline declared in Python (imported now to check it)."""
    from mloop.pipelines import RunStore, load_pipeline

    cli = state(ctx)
    _importable_cwd()
    pipeline = load_pipeline(path)
    chosen = name or pipeline.name
    RunStore(cli.registry.store).add_definition(
        chosen, path, pipeline.model, {}, cli.registry.clock.now()
    )
    cli.registry.record_event(pipeline.model, "pipeline.add", {"pipeline": chosen, "path": path})
    console.print(f"Added pipeline {chosen} ({path}) retraining model {pipeline.model}.")
    console.print(f"Run it with: mloop retrain {chosen}")


@pipelines_app.command("list")
def list_pipelines(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every pipeline with its model, triggers and last run."""
    from mloop.pipelines import RunStore

    cli = state(ctx)
    pipelines = _configured(cli.settings, cli.registry)
    store = RunStore(cli.registry.store)
    rows: list[dict[str, Any]] = []
    for p in sorted(pipelines.values(), key=lambda p: p.name):
        last = store.list_runs(p.name, limit=1)
        t = p.triggers
        triggers = [
            x
            for x in (
                f"cron {t.schedule}" if t.schedule else "",
                f"alerts ({', '.join(t.alert_kinds)})" if t.on_alert else "",
                f"{t.min_new_labels} new labels" if t.min_new_labels else "",
            )
            if x
        ]
        rows.append(
            {
                "name": p.name,
                "model": p.model,
                "source": p.source,
                "triggers": triggers,
                "last_run": last[0].id if last else None,
                "last_status": last[0].status if last else None,
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print("No pipelines yet. Add one with: mloop pipelines add package.module:attr")
        return
    table = Table("pipeline", "model", "source", "triggers", "last run", "status")
    for r in rows:
        table.add_row(
            r["name"],
            r["model"],
            r["source"],
            ", ".join(r["triggers"]),
            r["last_run"] or "-",
            r["last_status"] or "-",
        )
    console.print(table)


@runs_app.command("list")
def list_runs(
    ctx: typer.Context,
    pipeline: Annotated[str | None, typer.Option(help="Only runs of this pipeline.")] = None,
    limit: Annotated[int, typer.Option(help="How many runs.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Recent runs, newest first."""
    from mloop.pipelines import RunStore

    runs = RunStore(state(ctx).registry.store).list_runs(pipeline, limit=limit)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in runs], indent=2, default=str))
        return
    if not runs:
        console.print("No runs yet. Start one with: mloop retrain <pipeline>")
        return
    table = Table("run", "pipeline", "status", "trigger", "created", "dataset", "version", "error")
    for r in runs:
        table.add_row(
            r.id, r.pipeline, r.status, str(r.trigger.get("kind", "")), when(r.created_at),
            (r.dataset or "-")[:12], str(r.model_version or "-"), (r.error or "")[:60],
        )  # fmt: skip
    console.print(table)


def print_run(run: Run, out: Console | None = None) -> None:
    """Steps, timings, logs and check reports of one run."""
    from mloop.pipelines import Report

    out = out or console
    out.print(
        f"[bold]Run {run.id}[/bold] of pipeline {run.pipeline} (model {run.model}): {run.status}"
    )
    out.print(
        f"  trigger: {run.trigger.get('kind')} {run.trigger.get('key') or ''}  created {when(run.created_at)}"
    )
    if run.dataset:
        out.print(f"  dataset: sha256:{run.dataset}")
    if run.model_version is not None:
        out.print(f"  model version: {run.model}:{run.model_version}")
    if run.params:
        out.print("  params: " + ", ".join(f"{k}={v}" for k, v in sorted(run.params.items())))
    if run.error:
        out.print(f"  [red]{run.error}[/red]")
    steps = Table("step", "status", "attempts", "seconds", "last log line")
    for s in run.steps:
        took = "-" if s.duration_s is None else f"{s.duration_s:.2f}"
        steps.add_row(s.name, s.status, str(s.attempts), took, (s.logs[-1] if s.logs else "")[:80])
    out.print(steps)
    for stage, body in run.reports.items():
        table = Table("check", "result", "value", "threshold", "message", title=stage)
        for row in Report.from_dict(body).table():
            table.add_row(*row)
        out.print(table)


@runs_app.command("show")
def show_run(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id (a unique prefix is enough).")],
    logs: Annotated[bool, typer.Option(help="Print every step's full log.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One run: steps, timings, logs, parameters, metrics, dataset and model version."""
    from mloop.pipelines import RunStore

    run = RunStore(state(ctx).registry.store).get(run_id)
    if as_json:
        typer.echo(json.dumps(run.to_dict(), indent=2, default=str))
        return
    print_run(run)
    if logs:
        for s in run.steps:
            if s.logs:
                console.print(f"[bold]{s.name}[/bold]")
                for line in s.logs:
                    console.print(f"  {line}", markup=False, highlight=False)


def retrain(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Pipeline name (see: mloop pipelines list).")],
    resume: Annotated[
        bool, typer.Option(help="Continue unfinished runs instead of starting one.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the run as JSON.")] = False,
) -> None:
    """Run a pipeline now: snapshot, validate, train, gate, register, roll out."""
    from mloop.pipelines import TriggerService

    cli = state(ctx)
    pipelines = _configured(cli.settings, cli.registry)
    if name not in pipelines:
        raise NotFound(
            f"No pipeline named {name!r}; known: {sorted(pipelines)}. "
            "Add one with: mloop pipelines add package.module:attr"
        )
    runner = _runner(cli.settings, cli.registry)
    if resume:
        runs = runner.resume({name: pipelines[name]})
        if not runs:
            console.print(f"No unfinished runs of {name}.")
        for run in runs:
            print_run(run)
        return
    outcome = TriggerService(runner, [pipelines[name]]).retrain(
        name, actor=os.environ.get("USER", "")
    )
    if outcome.run_id is None:
        raise InvalidInput(f"Pipeline {name!r} did not start: {outcome.reason}.")
    run = runner.get(outcome.run_id)
    if as_json:
        typer.echo(json.dumps(run.to_dict(), indent=2, default=str))
    else:
        print_run(run)
    if run.status == "failed":
        raise typer.Exit(1)

"""``mloop demo``: the penguins tour, or (``--loop``) the closed loop on the real server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from mloop.cli._context import state
from mloop.cli._table import make_console

__all__ = ["demo"]

console = make_console()


def demo(
    ctx: typer.Context,
    serve: Annotated[bool, typer.Option(help="Start the server and send traffic.")] = True,
    exit_after: Annotated[
        bool, typer.Option("--exit", help="Stop after the tour instead of serving until Ctrl-C.")
    ] = False,
    port: Annotated[int, typer.Option(help="Port for the demo server (0: any free port).")] = 8000,
    loop: Annotated[
        bool,
        typer.Option(
            "--loop",
            help="Show the closed loop instead: mloop serve in --folder heals its model by "
            "itself (drift alert, retraining, gate, shadow, canary, promotion).",
        ),
    ] = False,
    folder: Annotated[
        Path, typer.Option(help="Project folder of --loop (its own earlier runs are cleared).")
    ] = Path("mloop-loop-demo"),
) -> None:
    """Train a classifier on packaged data, register it, serve it and watch it."""
    started = time.perf_counter()
    cli = state(ctx)
    if loop:
        from mloop.demo.loop import run_loop_demo

        outcome = run_loop_demo(folder.resolve(), console, port=0 if port == 8000 else port)
        console.print(f"Done in {time.perf_counter() - started:.1f} s.")
        if not outcome["promoted"]:
            raise typer.Exit(1)
        return
    from mloop.demo.tour import tour

    tour(cli.settings, cli.registry, serve=serve, port=port, exit_after=exit_after)

"""Options and error handling shared by the ``mloop gateway`` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mloop.errors import MloopError

__all__ = ["ConfigOption", "JsonOption", "fail"]

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="gateway.toml with \\[\\[deployments]] and \\[routes.*]."),
]

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def fail(exc: MloopError) -> typer.Exit:
    """Print the error's message and return the exit (code 2) to raise."""
    typer.echo(f"error: {exc.message}", err=True)
    return typer.Exit(2)

"""The ``mloop`` entry point: builds settings once, wires sub-commands, turns errors into one line."""

from __future__ import annotations

import sys
import traceback
import types
from pathlib import Path
from typing import Annotated

import click
import typer

from mloop.cli._context import CliState
from mloop.cli._contract import contract_app
from mloop.cli._demo import demo
from mloop.cli._gateway import gateway_app
from mloop.cli._models import alias_app, models_app, predict, register
from mloop.cli._monitor import feedback_app, monitor_app
from mloop.cli._optimize import optimize
from mloop.cli._pipelines import pipelines_app, retrain, runs_app
from mloop.cli._rollout import deploy, rollout_app
from mloop.cli._serve import keys_app, serve
from mloop.config import load_settings
from mloop.errors import MloopError

__all__ = ["app", "main"]

app = typer.Typer(
    name="mloop",
    help="Register, serve, monitor, retrain and roll out ML models; front LLM APIs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_vendored: types.ModuleType
try:  # typer >= 0.2x raises its own vendored click's exceptions
    from typer._click import exceptions as _vendored
except ImportError:  # pragma: no cover - typer with plain click
    _vendored = click.exceptions
_CLICK_ERRORS: tuple[type[Exception], ...] = (click.ClickException, _vendored.ClickException)
_ABORTS: tuple[type[BaseException], ...] = (
    click.exceptions.Abort,
    getattr(_vendored, "Abort", click.exceptions.Abort),
)


def _version() -> str:
    from importlib.metadata import version as dist_version

    return dist_version("mloop")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(_version())
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    home: Annotated[
        Path | None, typer.Option(help="mloop home folder (default ./.mloop or MLOOP_HOME).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="mloop.toml to read.")] = None,
    debug: Annotated[bool, typer.Option(help="Show tracebacks on errors.")] = False,
    _version_flag: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    if home is None:
        settings = load_settings(config_file=config)
    else:
        settings = load_settings(config_file=config, home=home)
    ctx.obj = CliState(settings, debug=debug)


@app.command()
def version() -> None:
    """Print mloop's version."""
    typer.echo(_version())


app.add_typer(models_app, name="models")
app.add_typer(alias_app, name="alias")
app.command("register")(register)
app.command("predict")(predict)
app.command("demo")(demo)
app.command("serve")(serve)
app.add_typer(keys_app, name="keys")
app.add_typer(gateway_app, name="gateway")
app.add_typer(monitor_app, name="monitor")
app.add_typer(feedback_app, name="feedback")
app.command("deploy")(deploy)
app.add_typer(rollout_app, name="rollout")
app.add_typer(pipelines_app, name="pipelines")
app.add_typer(runs_app, name="runs")
app.command("retrain")(retrain)
app.add_typer(contract_app, name="contract")
app.command("optimize")(optimize)

_EXIT_CODES = {"user_fixable": 2, "operator_fixable": 3, "retryable": 4, "fatal": 1}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; print one actionable line per error (tracebacks only with --debug)."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="mloop", standalone_mode=False)
    except _ABORTS:
        typer.echo("Aborted.", err=True)
        return 130
    except _CLICK_ERRORS as exc:  # usage mistakes: the usage line and what was wrong, exit 2
        exc.show()  # type: ignore[attr-defined]
        return int(exc.exit_code)  # type: ignore[attr-defined]
    except MloopError as exc:
        if debug:
            traceback.print_exc()
        typer.echo(f"error: {exc.message}", err=True)
        return _EXIT_CODES[exc.type]
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: say so in one line, keep the traceback behind --debug
        if debug:
            traceback.print_exc()
        typer.echo(
            f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback "
            "and please report it)",
            err=True,
        )
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())


def run() -> None:
    """Console-script entry point."""
    raise SystemExit(main())

"""``mloop gateway limit|team|spend``: what keys and teams may spend, and what they spent."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from mloop.cli._gateway_options import ConfigOption, JsonOption, fail
from mloop.config import load_settings
from mloop.errors import MloopError

__all__ = ["limit", "spend", "team"]

RouteOption = Annotated[
    list[str] | None, typer.Option("--route", help="A route it may call (repeatable; none: all).")
]
RpmOption = Annotated[int, typer.Option(help="Requests per minute (0: no cap).")]
TpmOption = Annotated[int, typer.Option(help="Tokens per minute (0: no cap).")]
BudgetOption = Annotated[
    list[str] | None,
    typer.Option("--budget", help="USD per UTC day/week/month, e.g. --budget day=5 (repeatable)."),
]


def _limits(route: list[str] | None, rpm: int, tpm: int, budget: list[str] | None) -> Any:
    from mloop.auth import Limits, parse_budgets

    return Limits(tuple(route or ()), rpm, tpm, parse_budgets(budget or []))


def limit(
    key_id: Annotated[str, typer.Argument(help="The key id (mloop keys list).")],
    team: Annotated[str | None, typer.Option(help="The team the key belongs to.")] = None,
    route: RouteOption = None,
    rpm: RpmOption = 0,
    tpm: TpmOption = 0,
    budget: BudgetOption = None,
) -> None:
    """Set what an API key may do at the gateway: routes, RPM/TPM caps, USD budgets, team."""
    from mloop.auth import LimitStore
    from mloop.store import MetadataStore

    try:
        limits = _limits(route, rpm, tpm, budget)
        LimitStore(MetadataStore.from_settings(load_settings())).set_key(key_id, limits, team=team)
    except MloopError as exc:
        raise fail(exc) from exc
    typer.echo(f"key {key_id}: {json.dumps({'team': team, **limits.to_dict()})}")


def team(
    name: Annotated[str, typer.Argument(help="The team's name.")],
    route: RouteOption = None,
    rpm: RpmOption = 0,
    tpm: TpmOption = 0,
    budget: BudgetOption = None,
) -> None:
    """Create or change a team: limits shared by all of its keys."""
    from mloop.auth import LimitStore
    from mloop.store import MetadataStore

    try:
        limits = _limits(route, rpm, tpm, budget)
        LimitStore(MetadataStore.from_settings(load_settings())).set_team(name, limits)
    except MloopError as exc:
        raise fail(exc) from exc
    typer.echo(f"team {name}: {json.dumps(limits.to_dict())}")


def spend(
    config: ConfigOption = None,
    period: Annotated[str, typer.Option(help="minute, day, week or month.")] = "day",
    as_json: JsonOption = False,
) -> None:
    """Spend in the current window per key, team, route and deployment (with caps)."""
    import time

    from mloop.auth import LimitStore
    from mloop.gateway import budget_caps, ledger_for, load_config, spend_report
    from mloop.store import MetadataStore

    if period not in ("minute", "day", "week", "month"):
        raise fail(MloopError(f"--period {period!r} must be minute, day, week or month."))
    try:
        settings = load_settings()
        store = MetadataStore.from_settings(settings)
        try:
            gateway_config = load_config(config, settings)
        except MloopError:
            gateway_config = None  # no gateway config: the SQL ledger
        ledger = ledger_for(gateway_config, store)
        rows = asyncio.run(ledger.rows(period=period, at=time.time()))
        limits = LimitStore(store)
        caps = budget_caps(limits.key_limits(), limits.team_limits(), period)
    except MloopError as exc:
        raise fail(exc) from exc
    out = spend_report(rows, caps)
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    if not out:
        typer.echo(f"No spend recorded this {period}.")
        return
    from mloop.cli._table import Table, make_console

    table = Table("subject", "metric", "spent", "held", "cap")
    for o in out:
        cap = "" if o["cap"] is None else f"{o['cap']:g}"
        table.add_row(o["subject"], o["metric"], f"{o['spent']:g}", f"{o['held']:g}", cap)
    make_console().print(table)

"""``mloop serve`` and ``mloop keys create|list|revoke``."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer

from mloop.cli._context import state

if TYPE_CHECKING:
    from mloop.auth import KeyStore

__all__ = ["keys_app", "serve"]

keys_app = typer.Typer(
    help="Create, list and revoke API keys for the server.", no_args_is_help=True
)


def serve(
    ctx: typer.Context,
    refs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Models to serve: name, name@alias or name:version (default: every production alias)."
        ),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes sharing the port.")] = None,
    auth: Annotated[
        str | None, typer.Option(help="auto (keys required beyond loopback), on or off.")
    ] = None,
) -> None:
    """Serve models over the records API and the Open Inference Protocol (v2)."""
    from mloop.server import serve as run_server

    settings = state(ctx).settings
    cfg = settings.serving
    cfg = replace(
        cfg,
        host=host or cfg.host,
        port=cfg.port if port is None else port,
        workers=workers or cfg.workers,
        auth=auth or cfg.auth,
    )
    run_server(replace(settings, serving=cfg), refs or (), workers=cfg.workers)


def _store(ctx: typer.Context) -> KeyStore:
    from mloop.auth import KeyStore

    return KeyStore(state(ctx).registry.store)


@keys_app.command("create")
def create(
    ctx: typer.Context,
    scope: Annotated[
        list[str], typer.Option("--scope", help="predict, feedback, deploy or admin (repeatable).")
    ],
    name: Annotated[str, typer.Option(help="What the key is for.")] = "default",
) -> None:
    """Create a key and print it once (only its hash is stored)."""
    info, token = _store(ctx).create(name, scope)
    typer.echo(token)
    typer.echo(
        f"key {info.key_id} ({info.name}) scopes: {', '.join(info.scopes)}. "
        "Store it now: it cannot be shown again.",
        err=True,
    )


@keys_app.command("list")
def list_keys(
    ctx: typer.Context,
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List keys (ids, names, scopes; never secrets)."""
    keys = _store(ctx).list(include_revoked=include_revoked)
    if as_json:
        typer.echo(json.dumps([k.to_dict() for k in keys], indent=2))
        return
    if not keys:
        typer.echo("No API keys. Create one with: mloop keys create --scope predict")
    for k in keys:
        revoked = "  REVOKED" if k.revoked_at else ""
        typer.echo(f"{k.key_id}  {k.name}  {','.join(k.scopes)}{revoked}")


@keys_app.command("revoke")
def revoke(
    ctx: typer.Context, key_id: Annotated[str, typer.Argument(help="The key id to revoke.")]
) -> None:
    """Revoke a key; servers stop accepting it within seconds."""
    info = _store(ctx).revoke(key_id)
    typer.echo(f"revoked {info.key_id} ({info.name})")

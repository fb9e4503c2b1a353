"""``mloop gateway ...``: serve the LLM gateway and check its configuration; the key,
spend, prompt and live A/B commands live beside this module and are wired here."""

from __future__ import annotations

from typing import Annotated

import typer

from mloop.cli._gateway_ab import ab_app
from mloop.cli._gateway_options import ConfigOption
from mloop.cli._gateway_prompts import eval_gate, prompt_app
from mloop.cli._gateway_spend import limit, spend, team
from mloop.config import load_settings
from mloop.errors import MloopError

__all__ = ["gateway_app"]

gateway_app = typer.Typer(
    name="gateway",
    help="The LLM gateway: OpenAI-compatible proxy with rate-limit scheduling and fallbacks.",
    no_args_is_help=True,
)


@gateway_app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Serve /v1/chat/completions, /v1/models, /v1/jobs and /metrics."""
    import uvicorn

    from mloop.gateway import create_app, load_config

    try:
        settings = load_settings()
        gateway_config = load_config(config, settings)
    except MloopError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    from mloop._connections import GRACEFUL_SHUTDOWN_S, ConnectionLimits, guarded_protocol
    from mloop.auth import auth_required

    bind = host or settings.gateway.host
    required = auth_required(settings.gateway.auth, bind)
    app = create_app(gateway_config, settings, auth=required)
    cfg = settings.serving
    limits = ConnectionLimits(
        cfg.header_timeout_s, cfg.body_timeout_s, cfg.max_connections_per_client
    )
    keys = "API keys with scope gateway required" if required else "OPEN (loopback only)"
    typer.echo(f"mloop gateway on http://{bind}:{port or settings.gateway.port}; {keys}", err=True)
    uvicorn.run(
        app,
        host=bind,
        port=port or settings.gateway.port,
        log_level="warning",
        access_log=False,
        http=guarded_protocol(limits),
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )


@gateway_app.command()
def check(config: ConfigOption = None) -> None:
    """Validate the configuration and print each route's fallback chain."""
    from mloop.gateway import load_config

    try:
        gateway_config = load_config(config, load_settings())
    except MloopError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    for name, route in sorted(gateway_config.routes.items()):
        steps = []
        for dep in route.chain:
            d = gateway_config.deployments[dep]
            version = route.prompts.get(dep) or route.template_for(dep).version
            steps.append(
                f"{dep} ({d.provider}:{d.model}, rpm={d.rpm}, tpm={d.tpm}, template={version})"
            )
        typer.echo(f"{name}: " + " -> ".join(steps))


gateway_app.command()(limit)
gateway_app.command()(team)
gateway_app.command()(spend)
gateway_app.add_typer(prompt_app, name="prompt")
gateway_app.command("eval")(eval_gate)
gateway_app.add_typer(ab_app, name="ab")


def main() -> None:
    """Run the gateway CLI on its own (``python -m mloop.cli._gateway``)."""
    gateway_app()


if __name__ == "__main__":
    main()

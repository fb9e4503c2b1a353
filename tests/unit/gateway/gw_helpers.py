"""Helpers for gateway unit tests: configs and an in-process mock provider."""

from __future__ import annotations

from typing import Any

from mloop.gateway import GatewayConfig, parse_config


def make_config(
    deployments: list[dict[str, Any]],
    routes: dict[str, Any] | None = None,
    **scheduler: Any,
) -> GatewayConfig:
    """A config whose deployments all live at http://mock/v1 under their own name."""
    deps = [{"base_url": "http://mock/v1", "model": d["name"], **d} for d in deployments]
    routes = routes or {"smart": {"chain": [d["name"] for d in deployments]}}
    return parse_config({"deployments": deps, "routes": routes, "scheduler": scheduler})


def chat(content: str = "hello", route: str = "smart", **extra: Any) -> dict[str, Any]:
    """A minimal chat-completions body."""
    return {"model": route, "messages": [{"role": "user", "content": content}], **extra}

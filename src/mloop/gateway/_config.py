"""Gateway configuration: deployments, routes with fallback chains, prompt templates.

Read from a TOML file (``mloop gateway serve --config gateway.toml``) or from the
``[[deployments]]`` / ``[routes.*]`` tables of ``mloop.toml`` (``settings.raw``).
Everything is validated once, here, into small immutable values.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mloop.config import Settings
from mloop.errors import ConfigurationError

__all__ = [
    "Deployment",
    "GatewayConfig",
    "PromptTemplate",
    "Provider",
    "Route",
    "load_config",
    "parse_config",
]

Provider = Literal["openai", "anthropic"]
_PROVIDERS: tuple[str, ...] = ("openai", "anthropic")


@dataclass(frozen=True)
class Deployment:
    """One model at one provider, with the quota the provider grants it."""

    name: str
    model: str
    base_url: str
    provider: Provider = "openai"
    api_key_env: str = ""
    rpm: int = 0
    tpm: int = 0
    max_concurrency: int = 0
    window_s: float = 60.0
    burst_s: float = 0.0
    input_cost_per_1k: float = 0.0
    output_cost_per_1k: float = 0.0
    timeout_s: float = 60.0
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def request_capacity(self) -> float:
        """How many requests the provider lets through in one burst (0: unlimited)."""
        return _capacity(self.rpm, self.window_s, self.burst_s)

    @property
    def token_capacity(self) -> float:
        """How many tokens the provider lets through in one burst (0: unlimited)."""
        return _capacity(self.tpm, self.window_s, self.burst_s)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Price in the configured currency of one call's usage."""
        return (
            prompt_tokens * self.input_cost_per_1k + completion_tokens * self.output_cost_per_1k
        ) / 1000.0


def _capacity(limit: int, window_s: float, burst_s: float) -> float:
    if limit <= 0:
        return 0.0
    if burst_s <= 0 or burst_s >= window_s:
        return float(limit)
    return max(1.0, limit * burst_s / window_s)


@dataclass(frozen=True)
class PromptTemplate:
    """How one deployment of a route wants its prompt: system text, few-shot, user wrapper."""

    version: str = "1"
    system: str | None = None
    few_shot: tuple[Mapping[str, str], ...] = ()
    user: str | None = None

    def render(self, messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The messages to send: the template's system and examples, the user's turns."""
        turns = [dict(m) for m in messages]
        if self.system is not None:
            turns = [m for m in turns if m.get("role") != "system"]
        if self.user is not None:
            for i in range(len(turns) - 1, -1, -1):
                if turns[i].get("role") == "user" and isinstance(turns[i].get("content"), str):
                    turns[i]["content"] = self.user.replace("{content}", turns[i]["content"])
                    break
        head: list[dict[str, Any]] = []
        if self.system is not None:
            head.append({"role": "system", "content": self.system})
        head.extend(dict(m) for m in self.few_shot)
        if self.system is None and head:
            # Examples go after the caller's own system message, not before it.
            sys_turns = [m for m in turns if m.get("role") == "system"]
            rest = [m for m in turns if m.get("role") != "system"]
            return sys_turns + head + rest
        return head + turns


_IDENTITY = PromptTemplate(version="none")


@dataclass(frozen=True)
class Route:
    """A name clients ask for, mapped to an ordered fallback chain of deployments."""

    name: str
    chain: tuple[str, ...]
    templates: Mapping[str, PromptTemplate] = field(default_factory=dict)
    output_schema: Mapping[str, Any] | None = None
    timeout_s: float = 300.0
    max_attempts: int = 8
    # deployment -> prompt reference ("name@alias") resolved from the prompt registry
    prompts: Mapping[str, str] = field(default_factory=dict)

    def template_for(self, deployment: str) -> PromptTemplate:
        """The template this route uses with ``deployment`` (identity when none)."""
        return self.templates.get(deployment, _IDENTITY)


@dataclass(frozen=True)
class GatewayConfig:
    """Every deployment and route the gateway knows, plus scheduler options."""

    deployments: Mapping[str, Deployment]
    routes: Mapping[str, Route]
    batch_aging_s: float = 30.0
    default_completion_tokens: int = 256
    # The largest max_tokens a request may ask for; more is a 422, never charged.
    max_completion_tokens: int = 65_536
    redis_url: str = ""
    key_prefix: str = "mloop:gateway:"
    # [budgets]: where keys' spend is counted ("sql": the metadata database; "redis";
    # "memory": this process only) and whether to serve when that ledger is down.
    budget_ledger: str = "sql"
    budget_fail_open: bool = False
    budget_hold_ttl_s: float = 3600.0  # a hold older than this is released (its replica died)
    # [cache]: exact response cache ("" off, "memory" or "redis"), entry TTL and size.
    cache_backend: str = ""
    cache_ttl_s: float = 3600.0
    cache_max_entries: int = 10_000

    def route(self, name: str) -> Route:
        """The route called ``name``; unknown names raise ``NotFound`` listing the known."""
        from mloop.errors import NotFound

        try:
            return self.routes[name]
        except KeyError:
            raise NotFound(
                f"Unknown model {name!r}: the gateway serves the routes "
                f"{sorted(self.routes)}. Ask for one of them, or add [routes.{name}] "
                "to the gateway configuration.",
                param="model",
            ) from None


def _num(table: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigurationError(f"{where}: {key}={value!r} must be a number >= 0.")
    return float(value)


def _str(table: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or (default is None and not value):
        raise ConfigurationError(f"{where}: {key} must be a non-empty string, got {value!r}.")
    return value


_DEPLOYMENT_KEYS = {
    "name",
    "provider",
    "base_url",
    "model",
    "api_key_env",
    "rpm",
    "tpm",
    "max_concurrency",
    "window_s",
    "burst_s",
    "input_cost_per_1k",
    "output_cost_per_1k",
    "timeout_s",
    "headers",
}


def _deployment(table: Mapping[str, Any], index: int) -> Deployment:
    where = f"[[deployments]] #{index + 1}"
    name = _str(table, "name", where)
    where = f"deployment {name!r}"
    unknown = set(table) - _DEPLOYMENT_KEYS
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(_DEPLOYMENT_KEYS)}."
        )
    provider = _str(table, "provider", where, "openai")
    if provider not in _PROVIDERS:
        raise ConfigurationError(
            f"{where}: provider={provider!r} is not supported; use one of {list(_PROVIDERS)}."
        )
    headers = table.get("headers", {})
    if not isinstance(headers, Mapping):
        raise ConfigurationError(f"{where}: headers must be a table of strings.")
    window = _num(table, "window_s", 60.0, where)
    if window <= 0:
        raise ConfigurationError(f"{where}: window_s must be > 0.")
    return Deployment(
        name=name,
        provider=provider,  # type: ignore[arg-type]
        base_url=_str(table, "base_url", where).rstrip("/"),
        model=_str(table, "model", where),
        api_key_env=_str(table, "api_key_env", where, ""),
        rpm=int(_num(table, "rpm", 0, where)),
        tpm=int(_num(table, "tpm", 0, where)),
        max_concurrency=int(_num(table, "max_concurrency", 0, where)),
        window_s=window,
        burst_s=_num(table, "burst_s", 0.0, where),
        input_cost_per_1k=_num(table, "input_cost_per_1k", 0.0, where),
        output_cost_per_1k=_num(table, "output_cost_per_1k", 0.0, where),
        timeout_s=_num(table, "timeout_s", 60.0, where) or 60.0,
        headers={str(k): str(v) for k, v in headers.items()},
    )


def _template(table: Any, where: str) -> PromptTemplate:
    if not isinstance(table, Mapping):
        raise ConfigurationError(f"{where} must be a table (version, system, few_shot, user).")
    few_shot = table.get("few_shot", [])
    if not isinstance(few_shot, list) or not all(
        isinstance(m, Mapping) and "role" in m and "content" in m for m in few_shot
    ):
        raise ConfigurationError(
            f"{where}: few_shot must be a list of {{role = ..., content = ...}} tables."
        )
    user = table.get("user")
    if user is not None and "{content}" not in str(user):
        raise ConfigurationError(
            f"{where}: user={user!r} must contain {{content}} where the caller's text goes."
        )
    return PromptTemplate(
        version=str(table.get("version", "1")),
        system=None if table.get("system") is None else str(table["system"]),
        few_shot=tuple({"role": str(m["role"]), "content": str(m["content"])} for m in few_shot),
        user=None if user is None else str(user),
    )


def _route(name: str, table: Any, deployments: Mapping[str, Deployment], base: Path) -> Route:
    where = f"[routes.{name}]"
    if not isinstance(table, Mapping):
        raise ConfigurationError(f"{where} must be a table with chain = [...].")
    chain = table.get("chain")
    if not isinstance(chain, list) or not chain or not all(isinstance(c, str) for c in chain):
        raise ConfigurationError(f"{where}: chain must be a non-empty list of deployment names.")
    for dep in chain:
        if dep not in deployments:
            raise ConfigurationError(
                f"{where}: chain names deployment {dep!r}, which is not defined; "
                f"defined: {sorted(deployments)}."
            )
    templates_raw = table.get("templates", {})
    if not isinstance(templates_raw, Mapping):
        raise ConfigurationError(f"{where}: templates must be a table keyed by deployment.")
    templates = {}
    prompts = {}
    for dep, tpl in templates_raw.items():
        if dep not in chain:
            raise ConfigurationError(
                f"{where}: template for {dep!r}, which is not in the chain {chain}."
            )
        if isinstance(tpl, Mapping) and "prompt" in tpl:
            ref = tpl["prompt"]
            if not isinstance(ref, str) or not ref.strip() or len(tpl) > 1:
                raise ConfigurationError(
                    f"[routes.{name}.templates.{dep}]: prompt must be the only key, a "
                    f'reference like "support-answer@production"; got {dict(tpl)!r}.'
                )
            prompts[dep] = ref.strip()
            continue
        templates[dep] = _template(tpl, f"[routes.{name}.templates.{dep}]")
    schema = table.get("output_schema")
    if "output_schema_file" in table:
        path = base / str(table["output_schema_file"])
        try:
            schema = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"{where}: cannot read output_schema_file {path}: {exc}"
            ) from exc
    if schema is not None and not isinstance(schema, Mapping):
        raise ConfigurationError(f"{where}: output_schema must be a JSON-schema table.")
    return Route(
        name=name,
        chain=tuple(chain),
        templates=templates,
        prompts=prompts,
        output_schema=schema,
        timeout_s=_num(table, "timeout_s", 300.0, where) or 300.0,
        max_attempts=max(1, int(_num(table, "max_attempts", 8, where))),
    )


def parse_config(data: Mapping[str, Any], base_dir: str | Path = ".") -> GatewayConfig:
    """Validate a parsed TOML mapping into a ``GatewayConfig``."""
    raw_deps = data.get("deployments", [])
    if not isinstance(raw_deps, list) or not raw_deps:
        raise ConfigurationError(
            "The gateway configuration has no [[deployments]]; add at least one "
            "(name, provider, base_url, model, api_key_env, rpm, tpm, max_concurrency)."
        )
    deployments: dict[str, Deployment] = {}
    for i, table in enumerate(raw_deps):
        if not isinstance(table, Mapping):
            raise ConfigurationError(f"[[deployments]] #{i + 1} must be a table.")
        dep = _deployment(table, i)
        if dep.name in deployments:
            raise ConfigurationError(f"Deployment name {dep.name!r} is defined twice.")
        deployments[dep.name] = dep
    raw_routes = data.get("routes", {})
    if not isinstance(raw_routes, Mapping) or not raw_routes:
        raise ConfigurationError(
            'The gateway configuration has no routes; add e.g. [routes.smart] chain = ["big"].'
        )
    base = Path(base_dir)
    routes = {name: _route(name, t, deployments, base) for name, t in raw_routes.items()}
    sched = data.get("scheduler", {})
    if not isinstance(sched, Mapping):
        raise ConfigurationError("[scheduler] must be a table.")
    budgets = data.get("budgets", {})
    if not isinstance(budgets, Mapping):
        raise ConfigurationError("[budgets] must be a table (ledger, fail_open).")
    ledger = _str(budgets, "ledger", "[budgets]", "sql")
    if ledger not in ("sql", "redis", "memory"):
        raise ConfigurationError(
            f"[budgets] ledger={ledger!r} must be 'sql' (the metadata database, shared by "
            "replicas), 'redis' (shared) or 'memory' (one replica only)."
        )
    fail_open = budgets.get("fail_open", False)
    if not isinstance(fail_open, bool):
        raise ConfigurationError(f"[budgets] fail_open={fail_open!r} must be true or false.")
    cache = data.get("cache", {})
    if not isinstance(cache, Mapping):
        raise ConfigurationError("[cache] must be a table (backend, ttl_s, max_entries).")
    cache_backend = _str(cache, "backend", "[cache]", "")
    if cache_backend not in ("", "off", "memory", "redis"):
        raise ConfigurationError(
            f"[cache] backend={cache_backend!r} must be 'memory' (this replica), 'redis' "
            "(shared by replicas) or 'off'."
        )
    hold_ttl = _num(budgets, "hold_ttl_s", 3600.0, "[budgets]")
    if hold_ttl < 60:
        raise ConfigurationError(
            f"[budgets] hold_ttl_s={hold_ttl} must be >= 60 and longer than any request runs."
        )
    return GatewayConfig(
        budget_hold_ttl_s=hold_ttl,
        cache_backend="" if cache_backend == "off" else cache_backend,
        cache_ttl_s=_num(cache, "ttl_s", 3600.0, "[cache]") or 3600.0,
        cache_max_entries=max(1, int(_num(cache, "max_entries", 10_000, "[cache]"))),
        budget_ledger=ledger,
        budget_fail_open=fail_open,
        deployments=deployments,
        routes=routes,
        batch_aging_s=_num(sched, "batch_aging_s", 30.0, "[scheduler]"),
        default_completion_tokens=int(_num(sched, "default_completion_tokens", 256, "[scheduler]")),
        max_completion_tokens=int(_num(sched, "max_completion_tokens", 65_536, "[scheduler]")),
        redis_url=_str(sched, "redis_url", "[scheduler]", ""),
        key_prefix=_str(sched, "key_prefix", "[scheduler]", "mloop:gateway:"),
    )


def load_config(path: str | Path | None = None, settings: Settings | None = None) -> GatewayConfig:
    """Read the gateway configuration from ``path``, ``settings.gateway.config`` or mloop.toml."""
    file = path or (settings.gateway.config if settings is not None else "")
    if file:
        p = Path(file)
        if not p.is_file():
            raise ConfigurationError(f"Gateway config file {p} does not exist.")
        try:
            data = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{p} is not valid TOML: {exc}") from exc
        config = parse_config(data, p.parent)
    elif settings is not None and settings.raw.get("deployments"):
        config = parse_config(settings.raw)
    else:
        raise ConfigurationError(
            "No gateway configuration: pass --config gateway.toml, set "
            "MLOOP_GATEWAY__CONFIG, or add [[deployments]] and [routes.*] to mloop.toml."
        )
    if not config.redis_url and settings is not None and settings.redis_url:
        from dataclasses import replace

        config = replace(config, redis_url=settings.redis_url)
    return config

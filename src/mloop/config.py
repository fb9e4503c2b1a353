"""Settings: one immutable object, the only reader of the environment and ``mloop.toml``.

Precedence, highest first: keyword overrides, ``MLOOP_*`` environment variables,
``mloop.toml`` (the file named by ``MLOOP_CONFIG``, else ``./mloop.toml``), defaults.

Top-level keys map to ``MLOOP_<KEY>``; keys of a section map to
``MLOOP_<SECTION>__<KEY>``, e.g. ``MLOOP_SERVING__MAX_BATCH_SIZE=32``.
Build settings once at the edge (CLI entry point, ``create_app``) and pass them down.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from mloop.errors import ConfigurationError

__all__ = [
    "DashboardSettings",
    "GatewaySettings",
    "MonitorSettings",
    "ServingSettings",
    "Settings",
    "load_settings",
]


@dataclass(frozen=True)
class ServingSettings:
    """How ``mloop serve`` runs."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_batch_size: int = 64
    max_batch_delay_ms: float = 2.0
    queue_limit: int = 256
    request_timeout_s: float = 10.0
    max_body_bytes: int = 8 * 1024 * 1024
    pool_max_models: int = 100
    pool_memory_mb: float = 2048.0
    cache_size: int = 10_000
    cache_ttl_s: float = 300.0
    auth: str = "auto"  # "auto": required unless bound to loopback; "on"; "off"
    alias_poll_s: float = 2.0
    # Unload a version no request used for this long (0: keep it); the next request
    # loads it again. Versions in a rollout, and pinned ones, stay.
    idle_unload_s: float = 0.0
    rate_limit_per_s: float = 0.0  # per API key; 0 = unlimited
    rate_limit_burst: float = 0.0  # bucket size; 0 = one second of rate
    access_log: bool = True
    predict_threads: int = 2
    # A lone request of at most this many rows into an idle model predicts on the event
    # loop (no thread hand-off); 0 sends every batch to the predict threads.
    lone_inline_rows: int = 16
    # Prediction requests skip FastAPI's router (same handlers and errors; docs unchanged).
    fast_routes: bool = True
    # FastAPI's native OpenTelemetry spans and metrics (for processes with OTel providers).
    otel: bool = False
    # mloop's own spans of each prediction (admission, batch, predict, log) over OTLP:
    # the ``otel`` extra; endpoint and service name from the standard OTEL_* variables.
    traces: bool = False
    # A request's headers must arrive within this of its first byte, its body within
    # body_timeout_s of the headers; one client address holds at most this many
    # connections (0: no cap; set it behind a load balancer, whose address all share).
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    max_connections_per_client: int = 512
    # Without API keys on loopback only loopback Host names are served; more, comma-separated.
    allowed_hosts: str = ""


@dataclass(frozen=True)
class MonitorSettings:
    """How predictions are logged and watched."""

    sample_rate: float = 1.0
    window: str = "1h"
    spool_flush_ms: float = 200.0
    webhook_url: str = ""
    ack_durable: bool = False  # serving answers only once the prediction's log record is fsynced
    write_through: bool = (
        True  # the log record is written (survives a killed process) before the answer
    )
    compact_interval_s: float = 60.0  # how often a server moves its spool into the log store


@dataclass(frozen=True)
class GatewaySettings:
    """Where the LLM gateway finds its deployments and routes."""

    config: str = ""
    host: str = "127.0.0.1"
    port: int = 4000
    auth: str = "auto"  # "auto": API keys (scope gateway) required unless on loopback
    max_body_bytes: int = 4 * 1024 * 1024
    # Hosts /v1/jobs may POST results to, comma-separated (loopback names always may).
    webhook_hosts: str = ""
    # OpenTelemetry spans of each request and provider call (GenAI conventions) over OTLP:
    # the ``otel`` extra; endpoint and service name from the standard OTEL_* variables.
    traces: bool = False


@dataclass(frozen=True)
class DashboardSettings:
    """What the web dashboard at ``/ui/`` shows besides the server's own parts."""

    # A gateway whose status the Gateway screen shows (``mloop gateway serve``'s URL), and
    # an admin key for its /v1/status: give the key as MLOOP_DASHBOARD__GATEWAY_KEY.
    gateway_url: str = ""
    gateway_key: str = field(default="", repr=False)
    gateway_timeout_s: float = 2.0


@dataclass(frozen=True)
class Settings:
    """Everything mloop reads from its environment, immutable once built."""

    home: Path = Path(".mloop")
    database_url: str = ""
    artifacts_url: str = ""
    # Verified copies of remote artifacts by sha256, so a restarted replica loads from
    # disk; empty: ``<home>/artifact-cache``; "off": no cache (local stores never use one).
    artifacts_cache: str = ""
    # The cache's size cap in bytes (0: no cap): adding a blob evicts the least recently
    # used others until the cache fits; the blob just added always stays.
    artifacts_cache_max_bytes: int = 10 * 1024**3
    # fsspec storage options of the artifact store (``[storage]``, ``MLOOP_STORAGE__KEY``),
    # e.g. ``endpoint_url``, ``key``, ``secret`` for s3fs; AWS_* variables work as well.
    storage: Mapping[str, Any] = field(default_factory=dict, hash=False)
    redis_url: str = ""
    log_level: str = "INFO"
    serving: ServingSettings = field(default_factory=ServingSettings)
    monitor: MonitorSettings = field(default_factory=MonitorSettings)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        home = Path(self.home).expanduser().resolve()
        object.__setattr__(self, "home", home)
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{home / 'mloop.db'}")
        if not self.artifacts_url:
            object.__setattr__(self, "artifacts_url", (home / "artifacts").as_uri())
        if not isinstance(self.storage, Mapping):
            raise ConfigurationError(
                f"[storage] must be a table of fsspec options, got {self.storage!r}."
            )
        if not self.artifacts_cache:
            object.__setattr__(self, "artifacts_cache", str(home / "artifact-cache"))
        if self.artifacts_cache_max_bytes < 0:
            raise ConfigurationError(
                f"artifacts_cache_max_bytes={self.artifacts_cache_max_bytes} is negative; "
                "give a size in bytes, or 0 for no cap."
            )

    @property
    def is_sqlite(self) -> bool:
        """True when metadata lives in the embedded SQLite file."""
        return self.database_url.startswith("sqlite")

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with some top-level fields replaced."""
        return dataclasses.replace(self, **overrides)


_T = TypeVar("_T")


def _coerce(value: Any, to: Any, key: str) -> Any:
    if to is Path:
        return Path(str(value))
    if to is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise ConfigurationError(f"Setting {key}={value!r} is not a boolean; use true or false.")
    if to in (int, float, str):
        try:
            return to(value)
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"Setting {key}={value!r} is not a valid {to.__name__}."
            ) from None
    return value


def _build(cls: type[_T], values: Mapping[str, Any], prefix: str) -> _T:
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(values) - known
    if unknown:
        raise ConfigurationError(
            f"Unknown setting(s) {sorted(unknown)} in [{prefix or 'top level'}]; "
            f"known: {sorted(known - {'raw'})}."
        )
    kwargs = {k: _coerce(v, hints[k], f"{prefix}{k}") for k, v in values.items()}
    return cls(**kwargs)


def _env_values(env: Mapping[str, str]) -> dict[str, Any]:
    top: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith("MLOOP_") or name == "MLOOP_CONFIG":
            continue
        key = name[len("MLOOP_") :].lower()
        if "__" in key:
            section, sub = key.split("__", 1)
            top.setdefault(section, {})[sub] = value
        else:
            top[key] = value
    return top


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


_SECTIONS: dict[str, type[Any]] = {
    "serving": ServingSettings,
    "monitor": MonitorSettings,
    "gateway": GatewaySettings,
    "dashboard": DashboardSettings,
}


def load_settings(
    env: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
    **overrides: Any,
) -> Settings:
    """Build ``Settings`` from ``mloop.toml``, ``MLOOP_*`` variables and overrides."""
    env = os.environ if env is None else env
    path = Path(config_file or env.get("MLOOP_CONFIG") or "mloop.toml")
    file_values: dict[str, Any] = {}
    if path.is_file():
        try:
            file_values = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{path} is not valid TOML: {exc}") from exc
    elif config_file or env.get("MLOOP_CONFIG"):
        raise ConfigurationError(f"Config file {path} does not exist.")
    values = _merge(_merge(file_values, _env_values(env)), overrides)
    # Tables that belong to other areas (routes, deployments, pipelines, alerts…)
    # stay available raw; only known scalar keys and sections become typed.
    top_fields = {f.name for f in dataclasses.fields(Settings)} - set(_SECTIONS) - {"raw"}
    kwargs: dict[str, Any] = {}
    for key in top_fields & set(values):
        kwargs[key] = values[key]
    for name, cls in _SECTIONS.items():
        section = values.get(name)
        if isinstance(section, Mapping):
            kwargs[name] = _build(cls, section, f"{name}.")
        elif section is not None and not dataclasses.is_dataclass(section):
            raise ConfigurationError(f"[{name}] must be a table of settings.")
        elif section is not None:
            kwargs[name] = section
    typed = _build(Settings, kwargs, "")
    return dataclasses.replace(typed, raw=file_values)

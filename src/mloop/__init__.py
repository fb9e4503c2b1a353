"""mloop: register, serve, monitor, retrain and roll out ML models, and front LLM APIs.

Typical use from a training script::

    import mloop
    mv = mloop.register(model, name="churn", training_data=X, target=y, alias="staging")
    predictor = mloop.load("churn@production")
    predictor.predict(records)
    report = mloop.drift(reference="churn@production", current=todays_rows)

``import mloop`` is cheap and has no side effects: areas load when first used.
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType
from typing import TYPE_CHECKING, Any

from mloop.config import Settings, load_settings
from mloop.errors import MloopError

if TYPE_CHECKING:
    from mloop.monitor import DriftReport
    from mloop.registry import ModelVersion, Predictor, Registry

__all__ = [
    "MloopError",
    "Settings",
    "drift",
    "get_registry",
    "load",
    "load_settings",
    "register",
]

_lock = threading.Lock()
_registries: dict[tuple[str, str], Registry] = {}


def get_registry(settings: Settings | None = None) -> Registry:
    """The registry for ``settings`` (default: from the environment and mloop.toml)."""
    from mloop.registry import Registry

    settings = settings or load_settings()
    key = (settings.database_url, settings.artifacts_url)
    with _lock:
        if key not in _registries:
            _registries[key] = Registry(settings)
        return _registries[key]


def register(model: object, name: str, **kwargs: Any) -> ModelVersion:
    """Register ``model`` as the next version of ``name``; see ``Registry.register``."""
    return get_registry().register(model, name, **kwargs)


def load(ref: str, *, trust: bool = False) -> Predictor:
    """Load ``name``, ``name@alias`` or ``name:version`` as a ``Predictor``."""
    return get_registry().load(ref, trust=trust)


def drift(reference: Any, current: Any, **options: Any) -> DriftReport:
    """``mloop.monitor.drift``, with ``"name@alias"`` references looked up in the default registry."""
    from mloop.monitor import drift as compare

    if isinstance(reference, str):
        options.setdefault("catalog", get_registry())
    return compare(reference, current, **options)


_AREAS = frozenset(
    {
        "contracts",
        "flavors",
        "gateway",
        "journal",
        "monitor",
        "pipelines",
        "registry",
        "rollout",
        "server",
        "serving",
    }
)


def __getattr__(name: str) -> ModuleType:
    """``mloop.monitor.drift(...)`` after a bare ``import mloop``: areas import on first use."""
    if name in _AREAS:
        return importlib.import_module(f"mloop.{name}")
    raise AttributeError(f"module 'mloop' has no attribute {name!r}")

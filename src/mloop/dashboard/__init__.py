"""The web dashboard at ``/ui/``: the whole loop on a few server-rendered pages.

Models, one model (versions, metric trend, alias history), one version (lineage,
contract, profile, gate, audit), two versions compared, the monitor's windows, the
rollout with its guards and commands, alerts and pipeline runs, and the LLM gateway's
status (``[dashboard] gateway_url``). Every number is
read from the library's own plain data (``Monitor.status``, the registry,
``Rollouts``, the run store, the alert history); each page has a JSON twin under
``/ui/api/…`` that the page polls to refresh itself. The charts are drawn by a small
script shipped in the package (``static/``), so nothing loads from another site.

The server mounts it: ``app.include_router(dashboard_router(Sources(...), guard))``.
"""

from mloop.dashboard._catalog_views import (
    alias_history,
    compare_versions,
    contract_diff,
    model_detail,
    models_overview,
    version_detail,
)
from mloop.dashboard._gateway_views import GatewayFeed, gateway_view
from mloop.dashboard._live_views import (
    activity,
    latency_series,
    latency_step,
    monitor_view,
    rollout_view,
    triggered_runs,
    window_series,
)
from mloop.dashboard._recent import Recent
from mloop.dashboard._routes import COOKIE, dashboard_router
from mloop.dashboard._sources import Sources, TrafficSnapshot

__all__ = [
    "COOKIE",
    "GatewayFeed",
    "Recent",
    "Sources",
    "TrafficSnapshot",
    "activity",
    "alias_history",
    "compare_versions",
    "contract_diff",
    "dashboard_router",
    "gateway_view",
    "latency_series",
    "latency_step",
    "model_detail",
    "models_overview",
    "monitor_view",
    "rollout_view",
    "triggered_runs",
    "version_detail",
    "window_series",
]

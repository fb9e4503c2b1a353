"""The small interfaces the runner depends on, so other areas plug in without imports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pandas as pd

if TYPE_CHECKING:
    from mloop.pipelines._spec import Window
    from mloop.pipelines._store import Run

__all__ = ["LabeledSource", "RolloutStarter", "RunTracker"]


@runtime_checkable
class RolloutStarter(Protocol):
    """Starts a rollout of ``model:version`` (the rollout area's controller satisfies this).

    ``strategy`` is ``"shadow-then-canary"`` (the default), ``"shadow"``, ``"canary"``,
    ``"blue-green"`` or ``"ab"``; ``policy`` holds the strategy's settings.
    """

    def start(self, model: str, version: int, strategy: str, **policy: Any) -> Any:
        """Begin moving traffic to the version; return an id or state for the audit trail."""
        ...


class RunTracker(Protocol):
    """An external experiment tracker that mirrors finished runs (MLflow, …)."""

    def log_run(self, run: Run) -> str | None:
        """Record ``run`` (params, metrics, tags, reports); return the tracker's run id."""
        ...


class LabeledSource(Protocol):
    """Labeled rows for a model: logged inputs joined with feedback (monitoring satisfies this)."""

    def labeled_rows(self, model: str, window: Window) -> pd.DataFrame:
        """Feature columns + ``label`` + ``ts`` for predictions of ``model`` in ``window``."""
        ...

    def count_labeled(self, model: str) -> int:
        """How many labeled rows exist for ``model`` in total (for new-label triggers)."""
        ...

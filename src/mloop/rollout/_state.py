"""The state of one rollout and the decision that moves it: plain immutable values."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mloop.rollout._policy import Strategy

__all__ = ["TERMINAL_PHASES", "Action", "Decision", "Phase", "RolloutState"]

Phase = Literal["warming", "running", "promoted", "rolled_back", "completed"]
TERMINAL_PHASES: frozenset[str] = frozenset({"promoted", "rolled_back", "completed"})

Action = Literal["hold", "start", "advance", "promote", "rollback", "complete", "pause", "resume"]


@dataclass(frozen=True)
class RolloutState:
    """Where a rollout is: phase, candidate traffic share, and when the current step began.

    ``weight`` is the percent of live traffic the candidate answers (shadow: 0, it
    only receives copies). ``revision`` increases with every write so that a stale
    writer (a controller that lost its lease) cannot overwrite newer state.
    """

    id: str
    model: str
    stable: int
    candidate: int
    strategy: Strategy
    started_at: float
    step_started_at: float
    updated_at: float
    phase: Phase = "warming"
    step: int = -1
    weight: float = 0.0
    paused: bool = False
    reason: str = ""
    revision: int = 0
    verdict: Mapping[str, Any] | None = None
    actor: str = ""

    @property
    def active(self) -> bool:
        """True until the rollout is promoted, rolled back or completed."""
        return self.phase not in TERMINAL_PHASES

    @property
    def candidate_serves(self) -> bool:
        """True when the router may send live requests (not only shadow copies) to the candidate."""
        return self.phase == "running" and self.weight > 0

    def serving(self, hold_s: float | None = None) -> str:
        """What answers users now, in words (``hold_s``: a blue-green hold)."""
        if not self.active:
            return f"{self.strategy} rollout {self.phase}"
        if not self.candidate_serves:
            return f"v{self.stable} serves; v{self.candidate} is {self.phase} ({self.strategy})"
        if self.weight >= 100:
            held = ""
            if hold_s is not None:
                until = dt.datetime.fromtimestamp(self.step_started_at + hold_s, dt.UTC)
                held = f", v{self.stable} held warm until {until:%Y-%m-%d %H:%M:%S} UTC"
            return (
                f"v{self.candidate} serves all traffic ({self.strategy}{held}); the production "
                f"alias still names v{self.stable} until the rollout promotes"
            )
        return (
            f"v{self.candidate} serves {self.weight:g}% and v{self.stable} the rest "
            f"({self.strategy}, step {self.step + 1})"
        )

    def replace(self, **changes: Any) -> RolloutState:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = dataclasses.asdict(self)
        data["verdict"] = dict(self.verdict) if self.verdict is not None else None
        return data


@dataclass(frozen=True)
class Decision:
    """What ``next_step`` decided: an action, why, the resulting state and the metrics seen."""

    action: Action
    reason: str
    state: RolloutState
    metrics: Mapping[str, float | None] = field(default_factory=dict)

    @property
    def transition(self) -> bool:
        """True when the decision changes phase, step, weight or pause (an audited event)."""
        return self.action != "hold"

"""The closed loop on packaged data (Palmer penguins), with time compressed by a manual clock.

A classifier trained where only Adelie and Gentoo penguins live is served; traffic
drifts to Dream island, where Chinstraps live; feedback shows accuracy falling; an
accuracy alert starts a retraining run; the challenger passes validation and the gate,
goes through shadow and canary and is promoted. A second run on poisoned data (flipped
labels) is stopped at validation and production is untouched.

``LoopScenario`` drives the story (``run_loop_demo`` prints it; the end-to-end test
asserts it). This module is an application of the library: unlike the rest of
``mloop.pipelines`` it uses the rollout and monitor areas directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mloop._clock import ManualClock
from mloop.pipelines._gate import GateConfig
from mloop.pipelines._runner import Runner
from mloop.pipelines._service import TriggerOutcome, TriggerService
from mloop.pipelines._spec import Pipeline, RolloutConfig, TrainingData, Window
from mloop.pipelines._store import Run
from mloop.pipelines._triggers import TriggerConfig

if TYPE_CHECKING:
    from rich.console import Console

    from mloop.config import Settings
    from mloop.registry import Registry

__all__ = [
    "FEATURES",
    "LoopScenario",
    "ShadowThenCanary",
    "flip_labels",
    "penguin_traffic",
    "run_loop_demo",
    "train_penguins",
]

MODEL = "penguins-loop"
FEATURES = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]
TARGET = "species"
HOUR = 3600.0
START = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def _penguins() -> pd.DataFrame:
    from palmerpenguins import load_penguins

    frame = load_penguins()
    frame = frame[frame[["bill_length_mm", "body_mass_g"]].notna().all(axis=1)]
    return frame[[*FEATURES, TARGET]].reset_index(drop=True)


def penguin_traffic(
    rows: int, *, dream_share: float, seed: int, start: float, hours: float
) -> pd.DataFrame:
    """``rows`` requests resampled from the penguins (numeric jitter), spread over ``hours``.

    ``dream_share`` of them come from Dream island (Adelie and Chinstrap); the rest from
    Biscoe and Torgersen (Adelie and Gentoo).
    """
    rng = np.random.default_rng(seed)
    data = _penguins()
    dream = data[data["island"] == "Dream"]
    other = data[data["island"] != "Dream"]
    n_dream = round(rows * dream_share)
    picked = pd.concat(
        [
            other.iloc[rng.integers(0, len(other), rows - n_dream)],
            dream.iloc[rng.integers(0, len(dream), n_dream)],
        ]
    ).sample(frac=1.0, random_state=int(rng.integers(0, 2**31)))
    picked = picked.reset_index(drop=True)
    for column in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"):
        scale = float(data[column].std()) * 0.03
        picked[column] = (picked[column] + rng.normal(0.0, scale, len(picked))).round(2)
    picked["ts"] = start + np.sort(rng.uniform(0.0, hours * HOUR, len(picked)))
    return picked


def train_penguins(data: TrainingData) -> Any:
    """A scikit-learn Pipeline: impute, scale and one-hot, then logistic regression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline as SkPipeline
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X = data.X
    numeric = [c for c in X.columns if X[c].dtype.kind == "f"]
    categorical = [c for c in X.columns if c not in numeric]
    prep = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
                categorical,
            ),
        ]
    )
    model = SkPipeline([("prep", prep), ("clf", LogisticRegression(max_iter=2000, C=0.5))])
    return model.fit(X, data.y.astype(str))


def flip_labels(
    frame: pd.DataFrame, share: float, *, seed: int = 0, target: str = TARGET
) -> pd.DataFrame:
    """A copy where ``share`` of the rows carry another class's label (label-flipping poison)."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    classes = sorted(out[target].astype(str).unique())
    idx = rng.choice(len(out), round(share * len(out)), replace=False)
    labels = out[target].astype(str).to_numpy(dtype=object)
    for i in idx:
        others = [c for c in classes if c != labels[i]]
        labels[i] = others[int(rng.integers(0, len(others)))]
    out[target] = labels
    return out


class ShadowThenCanary:
    """A ``RolloutStarter`` over ``mloop.rollout``: shadow first, then a canary when it completes.

    Call :meth:`advance` after each controller tick; it starts the canary once the
    shadow rollout of the same candidate completed with its guards holding.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        clock: Any,
        shadow: Mapping[str, Any],
        canary: Mapping[str, Any],
    ) -> None:
        from mloop.rollout import Rollouts

        self.rollouts = Rollouts(registry, clock=clock)
        self.shadow = dict(shadow)
        self.canary = dict(canary)
        self.pending: dict[str, int] = {}  # model -> candidate waiting for its canary

    def start(self, model: str, version: int, strategy: str, **policy: Any) -> Any:
        """Start ``strategy`` for ``model:version`` (``shadow-then-canary`` chains two)."""
        from mloop.rollout import policy_from_dict

        if strategy == "shadow-then-canary":
            state = self.rollouts.deploy(
                f"{model}:{version}",
                policy_from_dict({"strategy": "shadow", **self.shadow, **policy.get("shadow", {})}),
                actor="mloop-pipelines",
            )
            self.pending[model] = version
            return state.id
        spec = {"strategy": strategy, **(self.canary if strategy == "canary" else {}), **policy}
        return self.rollouts.deploy(
            f"{model}:{version}", policy_from_dict(spec), actor="mloop-pipelines"
        ).id

    def advance(self) -> None:
        """Start the canary of every candidate whose shadow period completed."""
        from mloop.rollout import policy_from_dict

        for model, version in list(self.pending.items()):
            state, _ = self.rollouts.status(model)
            if state.candidate != version or state.active:
                continue
            del self.pending[model]
            if state.phase == "completed":
                self.rollouts.deploy(
                    f"{model}:{version}",
                    policy_from_dict({"strategy": "canary", **self.canary}),
                    actor="mloop-pipelines",
                )


@dataclass
class Served:
    """What one batch of traffic looked like."""

    rows: int
    accuracy: float
    versions: dict[int, int]


class LoopScenario:
    """Serve, log, label, alert, retrain, roll out — in one process, on a manual clock."""

    def __init__(self, registry: Registry, clock: ManualClock) -> None:
        from mloop.monitor._alerts import AlertRule
        from mloop.rollout import Controller, DbRouter, InMemoryObservations

        self.registry = registry
        self.clock = clock
        self.labeled = pd.DataFrame()  # the prediction log joined with feedback
        self.poison_next = 0.0
        self.observations = InMemoryObservations(clock, assume_ready=True)
        self.router = DbRouter(registry.store, clock=clock, auto_refresh=False)
        self.controller = Controller(
            registry, self.observations, clock=clock, actor="rollout-controller"
        )
        self.rollout = ShadowThenCanary(
            registry,
            clock=clock,
            shadow={
                "duration_s": 2 * HOUR,
                "min_requests": 50,
                "guards": ["agreement>=0.5"],
                "interval_s": 60,
            },
            canary={
                "steps": [10, 50, 100],
                "step_duration_s": HOUR,
                "min_requests": 20,
                "min_labels": 20,
                "guards": ["error_rate<0.05", "accuracy>=0.85"],
                "interval_s": 60,
            },
        )
        self.runner = Runner(registry, clock=clock, rollout=self.rollout, timer=None)
        self.pipeline = Pipeline(
            name="penguins-retrain",
            model=MODEL,
            train=train_penguins,
            load=self._load,
            target=TARGET,
            time_column="ts",
            features=tuple(FEATURES),
            window=2 * 86400.0,
            triggers=TriggerConfig(cooldown_s=6 * HOUR),
            gate=GateConfig(
                min_improvement=0.02,
                slices=("island",),
                slice_tolerance=0.05,
                require={"accuracy": ">=0.9"},
            ),
            rollout=RolloutConfig(strategy="shadow-then-canary"),
            params={"model": "LogisticRegression", "C": 0.5},
        )
        self.service = TriggerService(self.runner, [self.pipeline])
        self.alert = AlertRule(
            name="penguins-accuracy", model=MODEL, metric="accuracy", threshold=0.9, op="<", for_=2
        )
        self.alert_state: Any = None
        self._predictors: dict[int, Any] = {}

    def _load(self, window: Window) -> pd.DataFrame:
        rows = self.labeled[
            (self.labeled["ts"] >= window.start) & (self.labeled["ts"] < window.end)
        ]
        if self.poison_next:
            rows = flip_labels(rows, self.poison_next, seed=7)
        return rows.reset_index(drop=True)

    def _predictor(self, version: int) -> Any:
        if version not in self._predictors:
            self._predictors[version] = self.registry.load(f"{MODEL}:{version}")
        return self._predictors[version]

    def register_champion(self) -> int:
        """Train v1 on the first survey (Biscoe and Torgersen only) and make it production."""
        first = penguin_traffic(600, dream_share=0.0, seed=1, start=START - 7 * 86400, hours=24)
        train, reference = first.iloc[:450], first.iloc[450:]
        model = train_penguins(TrainingData(train, tuple(FEATURES), TARGET, Window(0, START)))
        mv = self.registry.register(
            model,
            MODEL,
            training_data=train[FEATURES],
            target=train[TARGET].to_numpy(),
            reference_data=reference[FEATURES].reset_index(drop=True),
            reference_target=reference[TARGET].to_numpy(),
            alias="production",
            tags={"dataset": "palmerpenguins", "survey": "Biscoe+Torgersen"},
            description="Penguin species, trained where no Chinstraps live.",
        )
        return mv.version

    def serve(self, traffic: pd.DataFrame) -> Served:
        """Answer each request with the routed version, shadow it, log it, feed labels back."""
        self.router.refresh()
        decisions = [self.router.route(MODEL, f"user-{i}") for i in range(len(traffic))]
        records = [
            {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
            for row in traffic[FEATURES].to_dict(orient="records")
        ]
        # Predict per version in one batch (serving batches too); route per request.
        wanted = {d.version for d in decisions} | {v for d in decisions for v in d.shadow}
        answers = {
            v: [str(x) for x in self._predictor(v).predict(records).labels] for v in sorted(wanted)
        }
        versions: dict[int, int] = {}
        correct = 0
        for i, (decision, truth, at) in enumerate(
            zip(decisions, traffic[TARGET].astype(str), traffic["ts"], strict=True)
        ):
            label = answers[decision.version][i]
            versions[decision.version] = versions.get(decision.version, 0) + 1
            self.observations.record_request(MODEL, decision.version, 1.0, at=float(at))
            ok = label == truth
            correct += ok
            self.observations.record_label(MODEL, decision.version, ok, at=float(at))
            for shadow in decision.shadow:
                agree = answers[shadow][i] == label
                self.observations.record_shadow(MODEL, shadow, agree=agree, at=float(at))
                self.observations.record_request(MODEL, shadow, 1.0, at=float(at))
        self.labeled = pd.concat([self.labeled, traffic], ignore_index=True)
        return Served(len(traffic), correct / max(len(traffic), 1), versions)

    def check_alert(self, accuracy: float) -> list[TriggerOutcome]:
        """Evaluate the accuracy alert on the last window; firing alerts go to the pipelines."""
        from mloop.monitor._alerts import AlertState, Observation, evaluate_rule

        state = self.alert_state or AlertState()
        self.alert_state, events = evaluate_rule(
            self.alert, state, Observation(self.clock.now(), accuracy), self.clock.now()
        )
        outcomes: list[TriggerOutcome] = []
        for event in events:
            outcomes += self.service.on_alert(event)
        return outcomes

    def hour(self, dream_share: float, rows: int = 120, seed: int = 0) -> Served:
        """One compressed hour of traffic, then the controller and the alert look at it."""
        traffic = penguin_traffic(
            rows, dream_share=dream_share, seed=seed, start=self.clock.now(), hours=1
        )
        self.clock.advance(HOUR)
        served = self.serve(traffic)
        self.controller.tick()
        self.rollout.advance()
        return served

    def rollout_active(self) -> bool:
        """True while a rollout of the model is in progress."""
        from mloop.errors import NotFound

        try:
            state, _ = self.rollout.rollouts.status(MODEL)
        except NotFound:
            return False
        return bool(state.active)

    def last_run(self) -> Run:
        """The newest run of the pipeline."""
        return self.runner.list_runs(self.pipeline.name, limit=1)[0]


def run_loop_demo(settings: Settings, console: Console) -> dict[str, Any]:
    """``mloop demo --loop``: tell the closed-loop story on packaged data; return a summary."""
    from mloop.registry import Registry

    clock = ManualClock(START)
    registry = Registry(settings, clock=clock)
    world = LoopScenario(registry, clock)
    console.rule("[bold]mloop demo --loop: the closed loop, one simulated hour per step")
    v1 = world.register_champion()
    console.print(
        f"1. {MODEL}:{v1} is in production, trained on Biscoe and Torgersen (no Chinstraps)."
    )
    for h in range(3):
        served = world.hour(0.0, seed=100 + h)
        console.print(f"   hour {h + 1}: {served.rows} requests, accuracy {served.accuracy:.2f}")
    console.print("2. Traffic drifts: Dream island penguins (Chinstraps) start arriving.")
    run_id = None
    for h in range(3, 8):
        served = world.hour(0.5, seed=100 + h)
        outcomes = world.check_alert(served.accuracy)
        console.print(f"   hour {h + 1}: {served.rows} requests, accuracy {served.accuracy:.2f}")
        fired = [o for o in outcomes if o.fired]
        if fired:
            run_id = fired[0].run_id
            console.print(
                f"3. Alert 'accuracy < 0.9' fired → retraining run {run_id} ({fired[0].reason})."
            )
            break
    if run_id is None:
        console.print("The alert never fired; nothing to retrain.")
        return {"promoted": False}
    run = world.runner.get(run_id)
    _print_run(console, run)
    for h in range(8, 20):
        world.hour(0.5, seed=100 + h)
        if not world.rollout.pending and not world.rollout_active():
            break
    production = registry.aliases(MODEL).get("production")
    console.print(f"5. Rollout finished: {MODEL}@production → {production}.")
    for h in range(20, 23):
        served = world.hour(0.5, seed=100 + h)
        console.print(
            f"   hour {h + 1}: accuracy {served.accuracy:.2f} with version {sorted(served.versions)}"
        )
    console.print(
        "6. Someone poisons the next batch of labels (30% flipped); a run is started by hand."
    )
    world.poison_next = 0.3
    clock.advance(7 * HOUR)
    poisoned = world.runner.get(
        world.service.retrain(world.pipeline.name, actor="demo").run_id or ""
    )
    _print_run(console, poisoned)
    console.print(
        f"   production is still {MODEL}:{registry.aliases(MODEL).get('production')} "
        f"(versions: {[v.version for v in registry.versions(MODEL)]})."
    )
    console.print("7. Audit trail (oldest first):")
    for event in reversed(registry.history(MODEL, limit=60)):
        console.print(f"   {event['action']:<28} {_short(event['details'])}")
    return {"promoted": production != v1, "production": production, "runs": [run.id, poisoned.id]}


def _short(details: Mapping[str, Any]) -> str:
    keep = {
        k: v
        for k, v in details.items()
        if k
        in (
            "run",
            "alias",
            "from",
            "to",
            "version",
            "strategy",
            "candidate",
            "reason",
            "error",
            "dataset",
        )
    }
    return ", ".join(f"{k}={str(v)[:60]}" for k, v in keep.items())


def _print_run(console: Console, run: Run) -> None:
    from rich.table import Table

    console.print(
        f"4. Run {run.id}: [bold]{run.status}[/bold] dataset sha256:{(run.dataset or '')[:12]} model version {run.model_version}"
    )
    steps = Table("step", "status", "log")
    for s in run.steps:
        steps.add_row(s.name, s.status, (s.logs[-1] if s.logs else "")[:90])
    console.print(steps)
    for stage, report in run.reports.items():
        table = Table("check", "result", "value", "threshold", "message", title=stage)
        from mloop.pipelines._checks import Report

        for row in Report.from_dict(report).table():
            table.add_row(*row)
        console.print(table)

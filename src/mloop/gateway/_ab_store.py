"""Live A/B experiments and their outcomes in the metadata database (SQLite or PostgreSQL).

Everything lives in the shared store, so replicas count outcomes together and a
restart loses nothing. Per-arm figures are one SQL aggregate (count, sum, sum of
squares). An experiment ends with a conditional update: of two replicas deciding at
once, one wins and acts; ``running_key`` (NULL once ended, unique) allows one running
experiment per alias.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from mloop._sequential import MetricSummary
from mloop.errors import Conflict, NotFound
from mloop.gateway._ab import Arm, Experiment
from mloop.store import MetadataStore

__all__ = ["ExperimentStore", "gateway_ab_experiments", "gateway_ab_outcomes"]

_meta = sa.MetaData()

gateway_ab_experiments = sa.Table(
    "gateway_ab_experiments",
    _meta,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("prompt", sa.String(200), nullable=False),
    sa.Column("alias", sa.String(100), nullable=False),
    sa.Column("control", sa.Integer, nullable=False),
    sa.Column("candidate", sa.Integer, nullable=False),
    sa.Column("share", sa.Float, nullable=False),
    sa.Column("metric", sa.String(500), nullable=False),
    sa.Column("alpha", sa.Float, nullable=False),
    sa.Column("mde", sa.Float, nullable=False),
    sa.Column("min_samples", sa.Integer, nullable=False),
    sa.Column("case", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("running_key", sa.String(310), nullable=True, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float, nullable=True),
    sa.Column("created_by", sa.String(200), nullable=False),
)

gateway_ab_outcomes = sa.Table(
    "gateway_ab_outcomes",
    _meta,
    sa.Column("request_id", sa.String(200), primary_key=True),
    sa.Column("experiment_id", sa.String(40), nullable=False, index=True),
    sa.Column("arm", sa.String(16), nullable=False),
    sa.Column("response_id", sa.String(200), nullable=True, index=True),
    sa.Column("caller", sa.String(200), nullable=True),
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("at", sa.Float, nullable=False),
)

_FIELDS = [
    "id",
    "prompt",
    "alias",
    "control",
    "candidate",
    "share",
    "metric",
    "alpha",
    "mde",
    "min_samples",
    "case",
    "status",
    "reason",
    "created_at",
    "ended_at",
    "created_by",
]


def _experiment(row: Any) -> Experiment:
    values = {name: getattr(row, name) for name in _FIELDS}
    values["case"] = dict(values["case"] or {})
    return Experiment(**values)


class ExperimentStore:
    """Experiments and per-request outcomes, shared by every replica on one database."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    def create(self, e: Experiment) -> Experiment:
        """Store a new running experiment; a second one on the same alias is a conflict."""
        x = gateway_ab_experiments
        row = {name: getattr(e, name) for name in _FIELDS}
        row["case"] = dict(e.case)
        try:
            with self.store.write() as conn:
                conn.execute(x.insert().values(**row, running_key=e.ref))
        except sa.exc.IntegrityError as exc:
            running = self.running(e.prompt, e.alias)
            raise Conflict(
                f"{e.ref} is already under test ({running.id if running else '?'}); stop it "
                f"first with: mloop gateway ab stop {running.id if running else 'ID'}"
            ) from exc
        return e

    def get(self, experiment_id: str) -> Experiment:
        """The experiment ``experiment_id``."""
        x = gateway_ab_experiments
        with self.store.read() as conn:
            row = conn.execute(sa.select(x).where(x.c.id == experiment_id)).first()
        if row is None:
            raise NotFound(
                f"No A/B experiment {experiment_id[:80]!r}. List them with: mloop gateway ab status",
                param="experiment",
            )
        return _experiment(row)

    def experiments(self, *, running_only: bool = False) -> list[Experiment]:
        """Experiments, newest first."""
        x = gateway_ab_experiments
        query = sa.select(x).order_by(x.c.created_at.desc(), x.c.id)
        if running_only:
            query = query.where(x.c.status == "running")
        with self.store.read() as conn:
            return [_experiment(r) for r in conn.execute(query).all()]

    def running(self, prompt: str, alias: str) -> Experiment | None:
        """The running experiment on ``prompt@alias``, if any."""
        x = gateway_ab_experiments
        with self.store.read() as conn:
            row = conn.execute(sa.select(x).where(x.c.running_key == f"{prompt}@{alias}")).first()
        return None if row is None else _experiment(row)

    def finish(
        self,
        experiment_id: str,
        status: str,
        reason: str,
        at: float,
        *,
        then: Callable[[sa.Connection], None] | None = None,
    ) -> bool:
        """End a running experiment, and run ``then`` in the same transaction if it did.

        False when it had ended already (another replica won), and ``then`` does not run.
        """
        x = gateway_ab_experiments
        with self.store.write() as conn:
            done = conn.execute(
                x.update()
                .where(x.c.id == experiment_id, x.c.status == "running")
                .values(status=status, reason=reason, ended_at=at, running_key=None)
            )
            if done.rowcount and then is not None:
                then(conn)
        return bool(done.rowcount)

    def record(
        self,
        experiment_id: str,
        request_id: str,
        arm: Arm,
        *,
        at: float,
        response_id: str | None = None,
        caller: str | None = None,
        score: float | None = None,
    ) -> None:
        """Remember which arm answered a request (and its score, when scored at once)."""
        o = gateway_ab_outcomes
        with self.store.write() as conn:
            conn.execute(
                o.insert().values(
                    request_id=request_id,
                    experiment_id=experiment_id,
                    arm=arm,
                    response_id=response_id,
                    caller=caller,
                    score=score,
                    at=at,
                )
            )

    def score(
        self, score: float, *, request_id: str | None, response_id: str | None, caller: str | None
    ) -> tuple[str, Arm]:
        """Set a request's outcome (the last word counts); returns its experiment and arm."""
        o = gateway_ab_outcomes
        where = o.c.request_id == request_id if request_id else o.c.response_id == response_id
        with self.store.write() as conn:
            row = conn.execute(sa.select(o).where(where)).first()
            # Another key's requests are not this caller's to score (nor to know about).
            if row is None or (caller is not None and row.caller not in (None, caller)):
                raise NotFound(
                    f"No answer {request_id or response_id!r} is part of a live A/B: feedback "
                    "takes the x-mloop-request-id header (or the response's id) of an answer "
                    "served while an experiment ran.",
                    param="request_id" if request_id else "response_id",
                )
            conn.execute(o.update().where(o.c.request_id == row.request_id).values(score=score))
        return str(row.experiment_id), row.arm

    def summaries(self, experiment_id: str) -> dict[str, dict[str, Any]]:
        """Per arm: requests served and the outcomes' ``MetricSummary``."""
        o = gateway_ab_outcomes
        query = (
            sa.select(
                o.c.arm,
                sa.func.count(),
                sa.func.count(o.c.score),
                sa.func.sum(o.c.score),
                sa.func.sum(o.c.score * o.c.score),
            )
            .where(o.c.experiment_id == experiment_id)
            .group_by(o.c.arm)
        )
        with self.store.read() as conn:
            rows = conn.execute(query).all()
        found: Mapping[str, Any] = {r[0]: r for r in rows}
        out: dict[str, dict[str, Any]] = {}
        for arm in ("control", "candidate"):
            r = found.get(arm)
            requests, n, total, total_sq = (0, 0, 0.0, 0.0) if r is None else r[1:]
            summary = MetricSummary.of_sums(int(n), float(total or 0), float(total_sq or 0))
            out[arm] = {"requests": int(requests), "outcomes": summary}
        return out

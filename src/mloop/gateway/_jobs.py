"""Async jobs: submit a chat request, poll for its answer, get a webhook; survives restarts.

Jobs are rows in a ``JobStore`` (SQLAlchemy, SQLite under ``settings.home`` by
default). On start the runner picks up every job that was queued or running when
the last gateway stopped and runs it again, so no accepted job is lost.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import sqlalchemy as sa

from mloop.errors import InvalidInput, MloopError, NotFound
from mloop.gateway._gateway import Gateway
from mloop.gateway._scheduler import PRIORITIES

__all__ = ["Job", "JobRunner", "JobStore", "SqlJobStore"]

_metadata = sa.MetaData()
_jobs = sa.Table(
    "gateway_jobs",
    _metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("webhook_url", sa.String(2000), nullable=True),
    sa.Column("deadline_s", sa.Float, nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

UNFINISHED = ("queued", "running")
_CALLER = "x_mloop_key_id"  # stored with the request: a resumed job is billed to its key


@dataclass(frozen=True)
class Job:
    """One async job as stored."""

    id: str
    status: str
    priority: str
    request: dict[str, Any]
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    webhook_url: str | None
    deadline_s: float | None
    created_at: float
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of ``GET /v1/jobs/{id}``."""
        return {
            "id": self.id,
            "object": "mloop.job",
            "status": self.status,
            "priority": self.priority,
            "result": self.result,
            "error": self.error,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


class JobStore(Protocol):
    """Where jobs persist."""

    def create(self, job: Job) -> None:
        """Insert a new job."""
        ...

    def get(self, job_id: str) -> Job:
        """The job ``job_id``; raises ``NotFound``."""
        ...

    def update(self, job_id: str, **fields: Any) -> None:
        """Change some fields (status, result, error)."""
        ...

    def unfinished(self) -> list[Job]:
        """Jobs queued or running, oldest first."""
        ...

    def count_by_status(self) -> dict[str, int]:
        """How many jobs are in each status (only statuses that have jobs)."""
        ...


def _row_to_job(row: Any) -> Job:
    return Job(
        id=row.id,
        status=row.status,
        priority=row.priority,
        request=json.loads(row.request),
        result=json.loads(row.result) if row.result else None,
        error=json.loads(row.error) if row.error else None,
        webhook_url=row.webhook_url,
        deadline_s=row.deadline_s,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class SqlJobStore:
    """Jobs in a SQL database (SQLite file by default, PostgreSQL by URL)."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url)
        _metadata.create_all(self.engine)

    def create(self, job: Job) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                _jobs.insert().values(
                    id=job.id,
                    status=job.status,
                    priority=job.priority,
                    request=json.dumps(job.request),
                    webhook_url=job.webhook_url,
                    deadline_s=job.deadline_s,
                    created_at=job.created_at,
                    updated_at=job.updated_at,
                )
            )

    def get(self, job_id: str) -> Job:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(_jobs).where(_jobs.c.id == job_id)).first()
        if row is None:
            raise NotFound(f"No job with id {job_id!r}. Submit one with POST /v1/jobs.")
        return _row_to_job(row)

    def update(self, job_id: str, **fields: Any) -> None:
        values = {k: json.dumps(v) if k in ("result", "error") else v for k, v in fields.items()}
        values["updated_at"] = time.time()
        with self.engine.begin() as conn:
            conn.execute(_jobs.update().where(_jobs.c.id == job_id).values(**values))

    def count_by_status(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(_jobs.c.status, sa.func.count()).group_by(_jobs.c.status)
            ).all()
        return {str(status): int(n) for status, n in rows}

    def unfinished(self) -> list[Job]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(_jobs).where(_jobs.c.status.in_(UNFINISHED)).order_by(_jobs.c.created_at)
            ).all()
        return [_row_to_job(r) for r in rows]

    def close(self) -> None:
        """Dispose of pooled connections."""
        self.engine.dispose()


class JobRunner:
    """Runs stored jobs through the gateway and calls their webhooks."""

    def __init__(
        self,
        gateway: Gateway,
        store: JobStore,
        *,
        webhook_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.gateway = gateway
        self.store = store
        self._tasks: set[asyncio.Task[None]] = set()
        self._webhooks = httpx.AsyncClient(transport=webhook_transport, timeout=10.0)

    def submit(
        self,
        request: dict[str, Any],
        *,
        priority: str = "batch",
        webhook_url: str | None = None,
        deadline_s: float | None = None,
        caller: str | None = None,
    ) -> Job:
        """Store a job and start it; returns it queued (``caller``: the key it is billed to)."""
        self.gateway.config.route(str(request.get("model", "")))
        if priority not in PRIORITIES:
            raise InvalidInput(
                f"Priority {priority!r} is not known; use one of {list(PRIORITIES)}.",
                param="priority",
            )
        now = time.time()
        job = Job(
            id=f"job_{uuid.uuid4().hex}",
            status="queued",
            priority=priority,
            # A client cannot name the key a job bills to: only the verified caller can.
            request={
                **{k: v for k, v in request.items() if k != _CALLER},
                **({} if caller is None else {_CALLER: caller}),
            },
            result=None,
            error=None,
            webhook_url=webhook_url,
            deadline_s=deadline_s,
            created_at=now,
            updated_at=now,
        )
        self.store.create(job)
        self._start(job)
        return job

    def resume(self) -> int:
        """Restart every job a previous gateway left unfinished; returns how many."""
        jobs = self.store.unfinished()
        for job in jobs:
            self._start(job)
        return len(jobs)

    def _start(self, job: Job) -> None:
        task = asyncio.get_running_loop().create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job: Job) -> None:
        self.store.update(job.id, status="running")
        try:
            request = dict(job.request)
            caller = request.pop(_CALLER, None)
            result = await self.gateway.chat(
                request, priority=job.priority, deadline_s=job.deadline_s, caller=caller
            )
        except MloopError as exc:
            self.store.update(job.id, status="failed", error=exc.to_dict()["error"])
        else:
            self.store.update(job.id, status="succeeded", result=result.response)
        if job.webhook_url:
            await self._notify(self.store.get(job.id))

    async def _notify(self, job: Job) -> None:
        assert job.webhook_url is not None
        for attempt in range(3):
            try:
                response = await self._webhooks.post(job.webhook_url, json=job.to_dict())
                if response.status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5 * 2**attempt)

    async def aclose(self) -> None:
        """Stop running jobs (they stay queued/running in the store and resume later)."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._webhooks.aclose()

"""The steps every prediction route shares: admit, route, predict within a deadline, record."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import numpy as np

from mloop.auth import Guard, Principal, Scope
from mloop.config import Settings
from mloop.errors import FatalError, InvalidInput, MloopError
from mloop.flavors import Predictions
from mloop.registry import ModelVersion
from mloop.serving._batcher import Priority
from mloop.serving._deadlines import Deadlines
from mloop.serving._engine import Engine, deadline_error
from mloop.serving._limits import RateLimiter
from mloop.serving._routing import RouteDecision
from mloop.serving._runtime import Job
from mloop.serving._tracing import PredictionTracer, RequestSpans

__all__ = ["Outcome", "PredictionSink", "ServingContext"]

# Arms the prediction cache may answer: a rollout's candidate ("candidate", "b") and
# the A/B control ("a") always compute, so their guards count real outcomes.
_CACHED_ARMS = frozenset({"stable", "pinned"})


class PredictionSink(Protocol):
    """Where serving hands one record per request after answering (monitoring's log).

    A sink may also offer ``submit_many(records)``; serving then hands it every record
    of requests that finish in the same event-loop iteration at once (one spool write
    for a whole micro-batch instead of one per request).
    """

    def submit(self, record: Mapping[str, Any]) -> None:
        """Queue ``record``; must not block and must be thread-safe."""
        ...


@dataclass(frozen=True)
class Outcome:
    """What a route needs to format its answer."""

    predictions: Predictions
    version: ModelVersion
    arm: str
    cached: bool


def _inputs(job: Job) -> list[dict[str, Any]]:
    if job.kind == "records":
        return cast(list[dict[str, Any]], job.data)
    if job.kind == "tensor":
        return [{f"f{i}": v for i, v in enumerate(row)} for row in np.asarray(job.data).tolist()]
    cols = {k: (v.tolist() if isinstance(v, np.ndarray) else list(v)) for k, v in job.data.items()}
    return [dict(zip(cols, row, strict=True)) for row in zip(*cols.values(), strict=True)]


_LOGGED_TEXT = 1024  # longest text value kept in the prediction log


def _loggable(records: list[dict[str, Any]], keep: frozenset[str]) -> list[dict[str, Any]]:
    """Records as the log keeps them: the contract's columns (and the entity key), with
    long text cut. Extra columns a client sent (8,000 of them once) never reach the log.
    """
    out = []
    for record in records:
        if len(record) <= len(keep) and all(k in keep for k in record):
            row = record
        else:
            row = {k: v for k, v in record.items() if k in keep}
        if any(type(v) is str and len(v) > _LOGGED_TEXT for v in row.values()):
            row = {
                k: v[:_LOGGED_TEXT] if type(v) is str and len(v) > _LOGGED_TEXT else v
                for k, v in row.items()
            }
        out.append(row)
    return out


@dataclass
class ServingContext:
    """Everything routes share; built once by ``create_app``."""

    settings: Settings
    engine: Engine
    guard: Guard
    limiter: RateLimiter | None = None
    sink: PredictionSink | None = None
    entity_key: str | None = None
    tracer: PredictionTracer | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    _deadlines: Deadlines = field(default_factory=Deadlines, init=False, repr=False)
    # Records of requests resuming in the current loop iteration, written together.
    _log_group: list[tuple[Mapping[str, Any], asyncio.Future[None]]] | None = field(
        default=None, init=False, repr=False
    )

    @property
    def _ack_durable(self) -> bool:
        wanted = bool(getattr(self.settings.monitor, "ack_durable", False))
        return wanted and hasattr(self.sink, "durable")

    async def authorize(
        self,
        headers: Mapping[str, str],
        scope: Scope,
        state: dict[str, Any],
        query: Mapping[str, str] | None = None,
    ) -> Principal:
        """Check the key for ``scope`` and apply the caller's rate limit."""
        principal = self.guard.check(headers, scope, query)
        state["key_id"] = principal.key_id
        if self.limiter is not None and scope == Scope.PREDICT:
            await self.limiter.acquire(principal.key_id)
        return principal

    async def predict(
        self,
        name: str,
        job: Job,
        headers: Mapping[str, str],
        state: dict[str, Any],
        *,
        version: int | None = None,
        api: str = "records",
        decision: RouteDecision | None = None,
    ) -> Outcome:
        """Route, predict within the deadline, then record stats, metrics and the log entry."""
        if self.tracer is None:
            return await self._predict(name, job, headers, state, version, api, decision, None)
        with self.tracer.request(name, headers, api) as spans:
            outcome = await self._predict(name, job, headers, state, version, api, decision, spans)
            spans.set(
                version=outcome.version.version,
                arm=outcome.arm,
                cached=outcome.cached,
                rows=job.rows,
                request_id=str(state.get("request_id", "")),
            )
            return outcome

    async def _predict(
        self,
        name: str,
        job: Job,
        headers: Mapping[str, str],
        state: dict[str, Any],
        version: int | None,
        api: str,
        decision: RouteDecision | None,
        spans: RequestSpans | None,
    ) -> Outcome:
        started = time.perf_counter()
        priority = cast(Priority, headers.get("x-mloop-priority", "interactive").lower())
        if priority not in ("interactive", "batch"):
            raise InvalidInput(
                f"X-Mloop-Priority {priority!r} is not one of interactive, batch.",
                header="X-Mloop-Priority",
            )
        timeout = self.settings.serving.request_timeout_s
        asked = headers.get("x-mloop-timeout-ms")
        if asked:
            try:
                timeout = min(timeout, max(0.001, float(asked) / 1000))
            except ValueError:
                raise InvalidInput(f"X-Mloop-Timeout-Ms {asked!r} is not a number.") from None
        engine = self.engine
        if decision is None:
            decision = engine.route(name, self._sticky_key(job, headers), version)
        state["model"] = name
        state["version"] = decision.version
        try:
            with self._deadlines.within(timeout):
                predictions, mv, cached = await engine.predict(
                    name,
                    decision.version,
                    job,
                    priority=priority,
                    cached=decision.arm in _CACHED_ARMS,
                )
        except TimeoutError:
            exc = deadline_error(timeout)
            self._record_failure(name, decision.version, api, exc, started)
            raise exc from None
        except MloopError as exc:
            self._record_failure(name, decision.version, api, exc, started)
            raise
        except Exception:  # a bug: still a failed request of this version for its guards
            self._record_failure(name, decision.version, api, FatalError("bug"), started)
            raise
        seconds = time.perf_counter() - started
        engine.metrics.observe(name, decision.version, api, 200, seconds)
        engine.stats.observe(name, decision.version, seconds * 1000)
        if decision.shadow:
            engine.shadow(name, decision, job, predictions)
        if self.sink is not None:
            # Log before answering: an answered prediction's record is already written
            # (write-through spool) when the client sees it, so killing the process loses
            # nothing acknowledged; with ack_durable the answer also waits for the fsync.
            rid = state.get("request_id", "")
            if spans is None:
                await self._log(rid, name, decision.version, job, predictions, seconds, mv)
            else:
                with spans.log():
                    await self._log(rid, name, decision.version, job, predictions, seconds, mv)
            if self._ack_durable:
                await self.sink.durable([rid])  # type: ignore[attr-defined]
        return Outcome(predictions, mv, decision.arm, cached)

    def _sticky_key(self, job: Job, headers: Mapping[str, str]) -> str | None:
        key = headers.get("x-mloop-key")
        if key is None and self.entity_key is not None and job.kind == "records":
            value = job.data[0].get(self.entity_key)
            key = None if value is None else str(value)
        return key

    def _record_failure(
        self, name: str, version: int, api: str, exc: MloopError, started: float
    ) -> None:
        seconds = time.perf_counter() - started
        self.engine.metrics.observe(name, version, api, exc.status_code, seconds)
        if exc.type != "user_fixable":
            self.engine.stats.observe(name, version, seconds * 1000, ok=False)

    async def _log(
        self,
        rid: str,
        name: str,
        version: int,
        job: Job,
        predictions: Predictions,
        seconds: float,
        mv: ModelVersion,
    ) -> None:
        assert self.sink is not None
        inputs = _inputs(job)
        if job.kind == "records" and mv.schema is not None:
            keep = mv.schema.name_set
            if self.entity_key is not None and self.entity_key not in keep:
                keep = keep | {self.entity_key}
            inputs = _loggable(inputs, keep)
        keys = None
        if self.entity_key is not None:
            keys = [
                None if r.get(self.entity_key) is None else str(r[self.entity_key]) for r in inputs
            ]
        record = {
            "request_id": rid,
            "ts": time.time(),
            "model": name,
            "version": version,
            "inputs": inputs,
            "outputs": predictions.to_records(),
            "latency_ms": seconds * 1000,
            "entity_keys": keys,
        }
        submit_many = getattr(self.sink, "submit_many", None)
        if submit_many is None:
            self.sink.submit(record)
            return
        if self._log_group is None:
            # First record of this loop iteration: write it now (a lone request pays no
            # extra wait), and gather the requests of the same micro-batch that resume
            # in this iteration into one write on the next one.
            self.sink.submit(record)
            self._log_group = []
            asyncio.get_running_loop().call_soon(self._write_group, submit_many)
            return
        done = asyncio.get_running_loop().create_future()
        self._log_group.append((record, done))
        await done

    def _write_group(self, submit_many: Any) -> None:
        group, self._log_group = self._log_group or [], None
        if not group:
            return
        try:
            submit_many([record for record, _ in group])
        except Exception as exc:  # every request of the group fails as its own write would
            for _, done in group:
                if not done.done():
                    done.set_exception(exc)
            return
        for _, done in group:
            if not done.done():
                done.set_result(None)

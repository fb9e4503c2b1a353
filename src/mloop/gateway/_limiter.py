"""Where quotas live: a ``Limiter`` protocol, in-process by default, Redis for several replicas."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from mloop.gateway._config import Deployment
from mloop.gateway._quota import Observation, Quota, QuotaUse

__all__ = ["Admission", "Lease", "Limiter", "LocalLimiter"]


@dataclass(frozen=True)
class Lease:
    """Proof that one call was admitted on one deployment; give it back with ``release``."""

    deployment: str
    tokens: int
    mark: tuple[int, int, int]
    lease_id: str = ""


@dataclass(frozen=True)
class Admission:
    """Answer to ``try_acquire``: a lease, or how long to wait and on what."""

    lease: Lease | None
    wait_s: float = 0.0
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when the call may go now."""
        return self.lease is not None


class Limiter(Protocol):
    """Admits calls against each deployment's quota."""

    async def try_acquire(self, deployment: str, tokens: int, now: float) -> Admission:
        """Admit one call of ``tokens`` now, or say how long until it could be."""
        ...

    async def release(self, lease: Lease, now: float) -> None:
        """The call behind ``lease`` ended; free its concurrency slot."""
        ...

    async def observe(self, lease: Lease, obs: Observation, now: float) -> None:
        """Correct the quota from what the provider reported for ``lease``'s call."""
        ...

    async def usage(self, deployment: str, now: float) -> QuotaUse:
        """What is left of ``deployment``'s quota now (for the status page)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def quota_for(dep: Deployment, now: float) -> Quota:
    """A fresh local quota from a deployment's configured limits."""
    return Quota(
        rpm=dep.rpm,
        tpm=dep.tpm,
        max_concurrency=dep.max_concurrency,
        window_s=dep.window_s,
        request_capacity=dep.request_capacity,
        token_capacity=dep.token_capacity,
        now=now,
    )


class LocalLimiter:
    """Quotas held in this process: exact for one replica."""

    def __init__(self, deployments: Mapping[str, Deployment], now: float) -> None:
        self.quotas = {name: quota_for(dep, now) for name, dep in deployments.items()}

    async def try_acquire(self, deployment: str, tokens: int, now: float) -> Admission:
        quota = self.quotas[deployment]
        wait, reason = quota.wait(tokens, now)
        if wait > 0:
            return Admission(None, wait, reason)
        return Admission(Lease(deployment, tokens, quota.take(tokens, now)))

    async def release(self, lease: Lease, now: float) -> None:
        self.quotas[lease.deployment].release()

    async def observe(self, lease: Lease, obs: Observation, now: float) -> None:
        self.quotas[lease.deployment].observe(obs, lease.mark, lease.tokens, now)

    async def usage(self, deployment: str, now: float) -> QuotaUse:
        return self.quotas[deployment].usage(now)

    async def aclose(self) -> None:
        return None

"""How a failed provider call is classified: who must act, and what the gateway does next.

``rate_limited`` (429): quota drift; the request queues again.
``transient`` (408, 409, 5xx, timeouts): counts against the circuit breaker; backoff.
``deployment`` (401, 403, 404, invalid output): that deployment is out for this request.
``user`` (400, 413, 422): the caller must change the request; returned at once.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from mloop.errors import ConfigurationError, InvalidInput, MloopError, Overloaded, Unavailable
from mloop.gateway._config import Deployment

__all__ = ["Failure", "classify_status"]


class Failure(Exception):
    """One failed attempt, classified."""

    def __init__(
        self,
        error: MloopError,
        *,
        kind: str,
        retry_after: float | None = None,
        error_type: str = "",
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.kind = kind  # "rate_limited" | "transient" | "deployment" | "user"
        self.retry_after = retry_after
        # What went wrong, for traces' ``error.type``: the HTTP status, or a short name.
        self.error_type = error_type or kind


def provider_message(response: httpx.Response) -> str:
    """The provider's error message, shortened."""
    try:
        data = response.json()
        error = data.get("error", data)
        if isinstance(error, Mapping):
            return str(error.get("message") or error)[:300]
        return str(error)[:300]
    except ValueError:
        return response.text[:300]


def classify_status(
    dep: Deployment, response: httpx.Response, retry_after: float | None
) -> Failure:
    """The failure a non-200 provider answer stands for."""
    failure = _classify(dep, response, retry_after)
    failure.error_type = str(response.status_code)
    return failure


def _classify(dep: Deployment, response: httpx.Response, retry_after: float | None) -> Failure:
    status = response.status_code
    detail = provider_message(response)
    if status == 429:
        return Failure(
            Overloaded(
                f"Deployment {dep.name!r} is rate limited by its provider: {detail}",
                retry_after=retry_after,
                deployment=dep.name,
            ),
            kind="rate_limited",
        )
    if status in (408, 409) or status >= 500:
        return Failure(
            Unavailable(
                f"Deployment {dep.name!r} answered HTTP {status}: {detail}", deployment=dep.name
            ),
            kind="transient",
            retry_after=retry_after,
        )
    if status in (400, 413, 422):
        return Failure(
            InvalidInput(f"The provider rejected the request: {detail}", deployment=dep.name),
            kind="user",
        )
    hint = f" Check the API key in ${dep.api_key_env}." if status in (401, 403) else ""
    return Failure(
        ConfigurationError(
            f"Deployment {dep.name!r} ({dep.base_url}, model {dep.model!r}) answered "
            f"HTTP {status}: {detail}.{hint}",
            deployment=dep.name,
        ),
        kind="deployment",
    )

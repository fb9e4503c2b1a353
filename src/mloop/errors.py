"""The one error tree of mloop, grouped by who must act.

::

    MloopError                      (root; never raised directly)
    ├── UserError                   type "user_fixable": the caller changes the request
    │   ├── InvalidInput     422    bad records, contract violations (carries ``violations``)
    │   ├── NotFound         404    unknown model, version, alias, run, job …
    │   ├── Conflict         409    e.g. deleting a version an alias points at
    │   ├── Unauthenticated  401    missing or unknown API key
    │   ├── Forbidden        403    key lacks the scope the route needs
    │   └── PayloadTooLarge  413
    ├── OperatorError               type "operator_fixable": whoever runs mloop acts
    │   ├── ConfigurationError  500 bad settings, unreachable URLs
    │   ├── MissingDependency   500 an optional extra is not installed
    │   ├── IntegrityError      500 an artifact's bytes do not match its recorded sha256
    │   └── ModelFailed         500 the model itself raised or answered nonsense
    ├── RetryableError              type "retryable": nobody acts, try again later
    │   ├── Overloaded       429    queue full or rate limited (carries ``retry_after``)
    │   ├── Unavailable      503    model warming up, upstream down
    │   └── DeadlineExceeded 504    the request took longer than its timeout
    └── FatalError           500    type "fatal": a bug or broken invariant; report it

Every error knows its HTTP status, so one handler maps errors to responses;
``to_dict()`` is the JSON body ``{"error": {...}}`` the servers send.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

ErrorType = Literal["user_fixable", "operator_fixable", "retryable", "fatal"]

__all__ = [
    "ConfigurationError",
    "Conflict",
    "DeadlineExceeded",
    "ErrorType",
    "FatalError",
    "Forbidden",
    "IntegrityError",
    "InvalidInput",
    "MissingDependency",
    "MloopError",
    "ModelFailed",
    "NotFound",
    "OperatorError",
    "Overloaded",
    "PayloadTooLarge",
    "RetryableError",
    "Unauthenticated",
    "Unavailable",
    "UserError",
]


class MloopError(Exception):
    """Root of every error mloop raises on purpose."""

    type: ClassVar[ErrorType] = "fatal"
    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    @property
    def retryable(self) -> bool:
        """True when the same request may succeed later without changes."""
        return self.type == "retryable"

    def to_dict(self, request_id: str | None = None) -> dict[str, Any]:
        """JSON-ready body: ``{"error": {type, code, message, retryable, ...}}``."""
        body: dict[str, Any] = {
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
        }
        if request_id is not None:
            body["request_id"] = request_id
        body.update(self.details)
        return {"error": body}

    def headers(self) -> dict[str, str]:
        """HTTP headers that go with the error response."""
        return {}


# --- the caller must act -------------------------------------------------------------


class UserError(MloopError):
    """The request is wrong; the caller can fix it."""

    type = "user_fixable"
    status_code = 400
    code = "bad_request"


class InvalidInput(UserError):
    """Input does not match what the model or command accepts."""

    status_code = 422
    code = "invalid_input"

    def __init__(
        self,
        message: str,
        violations: Sequence[Mapping[str, Any]] = (),
        **details: Any,
    ) -> None:
        if violations:
            details["violations"] = [dict(v) for v in violations]
        super().__init__(message, **details)


class NotFound(UserError):
    """A model, version, alias or other named thing does not exist."""

    status_code = 404
    code = "not_found"


class Conflict(UserError):
    """The request contradicts the current state (e.g. deleting an aliased version)."""

    status_code = 409
    code = "conflict"


class Unauthenticated(UserError):
    """No valid API key was presented."""

    status_code = 401
    code = "unauthenticated"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(UserError):
    """The API key is valid but lacks the scope this action needs."""

    status_code = 403
    code = "forbidden"


class PayloadTooLarge(UserError):
    """The request body is larger than the configured limit."""

    status_code = 413
    code = "payload_too_large"


# --- whoever runs mloop must act -----------------------------------------------------


class OperatorError(MloopError):
    """The deployment is misconfigured or damaged; the operator must fix it."""

    type = "operator_fixable"
    status_code = 500
    code = "operator"


class ConfigurationError(OperatorError):
    """Settings are invalid or point at something unreachable."""

    code = "configuration"


class MissingDependency(OperatorError):
    """An optional extra is needed but not installed."""

    code = "missing_dependency"


class IntegrityError(OperatorError):
    """Stored bytes do not match the hash recorded for them."""

    code = "integrity"


class ModelFailed(OperatorError):
    """The model's own code raised (or answered what no prediction can be).

    Not mloop's bug and not the caller's: whoever deployed the model must look at
    it. It counts as a failure of that version, so rollout guards see it. A 500, not
    a 502: the model runs inside this server, it is not an upstream server that
    answered badly, and retrying the same input fails the same way.
    """

    code = "model_failed"


# --- nobody must act: try again ------------------------------------------------------


class RetryableError(MloopError):
    """A transient condition; the same request may succeed later."""

    type = "retryable"
    status_code = 503
    code = "unavailable"

    def __init__(self, message: str, retry_after: float | None = None, **details: Any) -> None:
        if retry_after is not None and not math.isfinite(retry_after):
            retry_after = None  # "never" is no time to wait: the client decides
        if retry_after is not None:
            details["retry_after"] = round(retry_after, 3)
        super().__init__(message, **details)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        # Retry-After is whole seconds; never tell a client 0 when it must wait.
        return {"Retry-After": str(max(1, int(self.retry_after + 0.999)))}


class Overloaded(RetryableError):
    """Too much work queued or a rate limit reached."""

    status_code = 429
    code = "overloaded"


class Unavailable(RetryableError):
    """A dependency is not ready (model loading, upstream down)."""

    status_code = 503
    code = "unavailable"


class DeadlineExceeded(RetryableError):
    """The request did not finish within its time budget."""

    status_code = 504
    code = "deadline_exceeded"


# --- a bug ---------------------------------------------------------------------------


class FatalError(MloopError):
    """An invariant broke; this is a bug in mloop or a plugin. Please report it."""

    type = "fatal"
    status_code = 500
    code = "internal"

"""What a gateway request returns: a whole answer, or a started stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ChatResult", "StreamResult"]


@dataclass(frozen=True)
class ChatResult:
    """One answered request: the OpenAI-shaped response and how it was served."""

    response: dict[str, Any]
    deployment: str
    template_version: str
    attempts: int
    waited_s: float
    cached: bool = False

    def headers(self) -> dict[str, str]:
        """Response headers telling the client which deployment and template answered."""
        return {
            "x-mloop-deployment": self.deployment,
            "x-mloop-template-version": self.template_version,
            "x-mloop-attempts": str(self.attempts),
            "x-mloop-cache": "hit" if self.cached else "miss",
        }


@dataclass
class StreamResult:
    """A started stream: OpenAI chunk dicts, and how the request was placed."""

    chunks: AsyncIterator[dict[str, Any]]
    deployment: str
    template_version: str
    attempts: int
    meta: dict[str, Any] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        """Response headers telling the client which deployment and template answered."""
        return {
            "x-mloop-deployment": self.deployment,
            "x-mloop-template-version": self.template_version,
            "x-mloop-attempts": str(self.attempts),
        }

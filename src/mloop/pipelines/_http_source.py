"""Read every record of a paginated HTTP JSON API into a frame (httpx), politely.

Pagination follows one of three conventions: a page number (``page``), a cursor the
body hands back (``cursor``), or a next-page URL in the body or the ``Link`` header
(``next``). Requests are spaced to at most ``rate_per_s``; a 429, a 5xx or a network
error is retried with exponential backoff, honouring ``Retry-After``. Time and sleeping
are injected, so tests never wait. The pacing and retry loop is our own (~40 lines)
rather than a retry library's: it has to share one clock with the rate limit and read
the server's ``Retry-After``, and FACTS.md measured generic jittered retries wasting calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import pandas as pd

from mloop.errors import ConfigurationError, InvalidInput, Unavailable

__all__ = ["HttpJsonSource", "Pagination"]

Pagination = Literal["none", "page", "cursor", "next"]
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class HttpJsonSource:
    """A JSON API whose pages hold a list of records.

    ``records`` is the dotted path of the list in each page body ("" when the body is the
    list); ``page_param``/``cursor_param`` name the query parameters, ``cursor_field`` and
    ``next_field`` the dotted paths of the next cursor or URL in the body.
    """

    url: str
    params: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    records: str = ""
    pagination: Pagination = "none"
    page_param: str = "page"
    first_page: int = 1
    cursor_param: str = "cursor"
    cursor_field: str = "next_cursor"
    next_field: str = "next"
    max_pages: int = 10_000
    rate_per_s: float | None = None
    max_attempts: int = 5
    backoff_s: float = 0.5
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.pagination not in ("none", "page", "cursor", "next"):
            raise ConfigurationError(
                f"Pagination {self.pagination!r} is not one of none, page, cursor, next."
            )
        if self.rate_per_s is not None and self.rate_per_s <= 0:
            raise ConfigurationError(f"rate_per_s must be positive; got {self.rate_per_s}.")

    def read(
        self,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> pd.DataFrame:
        """Every record of every page, as one frame (nested objects flattened with dots)."""
        rows = list(self.iter_records(transport=transport, clock=clock, sleep=sleep))
        return pd.json_normalize(rows) if rows else pd.DataFrame()

    def iter_records(
        self,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Iterator[dict[str, Any]]:
        """Records one page at a time."""
        pacer = _Pacer(self.rate_per_s, clock, sleep)
        with httpx.Client(
            transport=transport, headers=dict(self.headers), timeout=self.timeout_s
        ) as client:
            url: str | None = self.url
            params = dict(self.params)
            if self.pagination == "page":
                params[self.page_param] = self.first_page
            for _ in range(self.max_pages):
                assert url is not None
                response = self._get(client, url, params, pacer, sleep)
                try:
                    body = response.json()
                except ValueError as exc:
                    raise InvalidInput(
                        f"GET {response.url} did not answer JSON: {response.text[:120]!r}"
                    ) from exc
                page = _records(body, self.records, url)
                yield from page
                url, params = self._next(response, body, url, params, bool(page))
                if url is None:
                    return
            raise InvalidInput(
                f"{self.url} still had pages after {self.max_pages}; raise max_pages if "
                "that is expected."
            )

    def _get(
        self,
        client: httpx.Client,
        url: str,
        params: Mapping[str, Any],
        pacer: _Pacer,
        sleep: Callable[[float], None],
    ) -> httpx.Response:
        problem = ""
        for attempt in range(1, self.max_attempts + 1):
            pacer.wait()
            try:
                response = client.get(url, params=dict(params) or None)
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                wait = self.backoff_s * 2 ** (attempt - 1)
            else:
                if response.status_code not in _RETRY_STATUS:
                    if response.is_error:
                        raise InvalidInput(
                            f"GET {response.url} answered {response.status_code}: "
                            f"{response.text[:200]}"
                        )
                    return response
                problem = f"HTTP {response.status_code}"
                wait = _retry_after(response) or self.backoff_s * 2 ** (attempt - 1)
            if attempt < self.max_attempts:
                sleep(wait)
        raise Unavailable(
            f"GET {url} failed {self.max_attempts} times (last: {problem}); the API may be "
            "down or limiting us. The step is retried with the run.",
            retry_after=self.backoff_s,
        )

    def _next(
        self,
        response: httpx.Response,
        body: Any,
        url: str,
        params: dict[str, Any],
        had_records: bool,
    ) -> tuple[str | None, dict[str, Any]]:
        if self.pagination == "none":
            return None, params
        if self.pagination == "page":
            if not had_records:
                return None, params
            return url, {**params, self.page_param: int(params[self.page_param]) + 1}
        if self.pagination == "cursor":
            cursor = _path(body, self.cursor_field)
            if cursor in (None, ""):
                return None, params
            return url, {**params, self.cursor_param: cursor}
        link = _path(body, self.next_field) if isinstance(body, Mapping) else None
        if not link:
            link = response.links.get("next", {}).get("url")
        if not link:
            return None, params
        # The next URL carries its own query string.
        return str(response.url.join(str(link))), {}


class _Pacer:
    """Spaces calls at least ``1 / rate`` seconds apart (a one-token bucket)."""

    def __init__(
        self, rate: float | None, clock: Callable[[], float], sleep: Callable[[float], None]
    ) -> None:
        self.gap = 0.0 if rate is None else 1.0 / rate
        self.clock = clock
        self.sleep = sleep
        self.next_at: float | None = None

    def wait(self) -> None:
        now = self.clock()
        if self.next_at is not None and now < self.next_at:
            self.sleep(self.next_at - now)
            now = self.next_at
        self.next_at = now + self.gap


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return None if seconds is None or not 0 <= seconds <= 3600 else seconds


def _path(body: Any, dotted: str) -> Any:
    value = body
    for part in [p for p in dotted.split(".") if p]:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _records(body: Any, dotted: str, url: str) -> Sequence[dict[str, Any]]:
    found = _path(body, dotted)
    if not isinstance(found, list) or not all(isinstance(r, Mapping) for r in found):
        where = f"at {dotted!r}" if dotted else "as the body"
        raise InvalidInput(
            f"{url} did not answer with a list of records {where}; set 'records' to the "
            "dotted path of the list (e.g. records='data.items')."
        )
    return [dict(r) for r in found]

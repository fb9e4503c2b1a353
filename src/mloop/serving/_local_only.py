"""Open mode stays local: no web page can drive a keyless server on loopback.

With no API keys, a server on 127.0.0.1 is reachable by any page the operator's
browser opens. Two browser paths lead there without the page's own server:
a cross-site "simple" request (``text/plain`` or form POSTs, sent without a CORS
preflight, processed even though the page cannot read the answer) and DNS
rebinding (a hostile name that resolves to 127.0.0.1, so the page reads answers
as same-origin). A request that arrived on a loopback socket of a keyless server
is therefore served only when

- its ``Host`` is a loopback name (``localhost``, ``127.0.0.1``, ``[::1]``) or one the
  operator allowed (``serving.allowed_hosts``),
- its ``Origin``, when a browser sent one, is a loopback page too, and
- a body-carrying request does not use a content type a page can send cross-site
  without asking (``text/plain``, form encodings): JSON clients send
  ``application/json``, Triton clients ``application/octet-stream``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from urllib.parse import urlsplit

from mloop.auth import is_loopback
from mloop.errors import Forbidden

__all__ = ["LocalOnly"]

_SIMPLE_TYPES = (b"text/plain", b"application/x-www-form-urlencoded", b"multipart/form-data")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@functools.lru_cache(maxsize=1024)
def _host_of(authority: str) -> str:
    """``example.com`` from ``example.com:8000``, ``::1`` from ``[::1]:8000``."""
    if authority.startswith("["):
        return authority[1 : authority.find("]")] if "]" in authority else authority
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


class LocalOnly:
    """Checks one request's Host, Origin and content type (see the module docstring)."""

    def __init__(self, allowed_hosts: Iterable[str] = ()) -> None:
        self.allowed = frozenset(h.lower() for h in allowed_hosts)

    def applies(self, server: tuple[str, int] | None) -> bool:
        """True when the request came in on a loopback socket."""
        return bool(server) and is_loopback(str(server[0]))  # type: ignore[index]

    def _allowed(self, host: str) -> bool:
        return is_loopback(host) or host.lower() in self.allowed

    def check(
        self, method: str, host: bytes | None, origin: bytes | None, content_type: bytes | None
    ) -> None:
        """Raise ``Forbidden`` when a page on another site could have sent this request."""
        # No Host at all (HTTP/1.0 tools, in-process callers): no browser sends that.
        name = _host_of(host.decode("latin-1").strip()) if host is not None else "localhost"
        if not self._allowed(name):
            raise Forbidden(
                f"Host {name!r} is not a loopback name. This server has no API keys and "
                "answers only requests for localhost/127.0.0.1 (a hostile web page can point "
                "another name at 127.0.0.1); add the name to serving.allowed_hosts or "
                "require keys (serving.auth = 'on').",
                host=name,
            )
        if origin is not None and origin != b"null":
            page = urlsplit(origin.decode("latin-1")).hostname or ""
            if not self._allowed(page):
                raise Forbidden(
                    f"Requests from web pages on {page!r} are refused: this server has no "
                    "API keys, so only pages on localhost may call it. Require keys "
                    "(serving.auth = 'on') to serve other origins.",
                    origin=origin.decode("latin-1"),
                )
        if method in _BODY_METHODS and content_type is not None:
            kind = content_type.split(b";", 1)[0].strip().lower()
            if kind in _SIMPLE_TYPES:
                raise Forbidden(
                    f"Content-Type {kind.decode('latin-1')} is refused on a server without API "
                    "keys (any web page can send it cross-site); send Content-Type: "
                    "application/json.",
                    content_type=kind.decode("latin-1"),
                )

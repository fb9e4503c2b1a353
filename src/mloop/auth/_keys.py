"""API keys: created once, stored only as a hash, verified from a short in-memory cache.

A key reads ``mlp_<key_id>_<secret>``. The secret is 32 random bytes, so a plain
sha256 of the whole key is as strong as a slow password hash would be; comparison
uses ``hmac.compare_digest``. Verified keys are cached for ``cache_ttl_s`` so the
request path does not touch the database; a revocation takes effect within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from mloop._clock import Clock, SystemClock
from mloop.auth._scopes import Principal, Scope, parse_scopes
from mloop.errors import InvalidInput, NotFound, Unauthenticated
from mloop.store import MetadataStore, api_keys

__all__ = ["ApiKeyInfo", "KeyStore"]

_PREFIX = "mlp"
_MAX_CACHED = 10_000


@dataclass(frozen=True)
class ApiKeyInfo:
    """A stored key without its secret."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: float
    revoked_at: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "key_id": self.key_id,
            "name": self.name,
            "scopes": list(self.scopes),
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class KeyStore:
    """Create, list, revoke and verify API keys in the metadata database."""

    def __init__(
        self, store: MetadataStore, *, clock: Clock | None = None, cache_ttl_s: float = 10.0
    ) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self.cache_ttl_s = cache_ttl_s
        self._cache: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, name: str, scopes: Iterable[str]) -> tuple[ApiKeyInfo, str]:
        """Store a new key; return its info and the full key text (shown only once)."""
        parsed = parse_scopes(scopes)
        if not name.strip():
            raise InvalidInput("A key needs a name, e.g. --name ci-deployer.")
        key_id = secrets.token_hex(6)
        token = f"{_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        now = self.clock.now()
        ordered = sorted(s.value for s in parsed)
        with self.store.write() as conn:
            conn.execute(
                api_keys.insert().values(
                    key_id=key_id,
                    name=name,
                    hash=f"sha256${_digest(token)}",
                    scopes=ordered,
                    created_at=now,
                    revoked_at=None,
                )
            )
        return ApiKeyInfo(key_id, name, tuple(ordered), now, None), token

    def list(self, *, include_revoked: bool = False) -> list[ApiKeyInfo]:
        """Every key, oldest first (revoked ones only when asked)."""
        query = sa.select(api_keys).order_by(api_keys.c.created_at)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        with self.store.read() as conn:
            rows = conn.execute(query).all()
        return [
            ApiKeyInfo(r.key_id, r.name, tuple(r.scopes), r.created_at, r.revoked_at) for r in rows
        ]

    def revoke(self, key_id: str) -> ApiKeyInfo:
        """Mark a key revoked; it stops working within the cache TTL."""
        now = self.clock.now()
        with self.store.write() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
            if row is None:
                raise NotFound(
                    f"No API key with id {key_id!r}. List keys with: mloop keys list",
                    key_id=key_id,
                )
            revoked_at = row.revoked_at or now
            conn.execute(
                api_keys.update().where(api_keys.c.key_id == key_id).values(revoked_at=revoked_at)
            )
        with self._lock:
            self._cache.clear()
        return ApiKeyInfo(row.key_id, row.name, tuple(row.scopes), row.created_at, revoked_at)

    def verify(self, token: str) -> Principal:
        """The principal behind ``token``; ``Unauthenticated`` if unknown, malformed or revoked."""
        digest = _digest(token)
        now = self.clock.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            principal = hit[1]
        else:
            principal = self._lookup(token, digest)
            with self._lock:
                self._cache[digest] = (now + self.cache_ttl_s, principal)
                self._cache.move_to_end(digest)
                while len(self._cache) > _MAX_CACHED:
                    self._cache.popitem(last=False)
        if principal is None:
            raise Unauthenticated(
                "The API key is unknown or revoked. Send a valid key as "
                "'Authorization: Bearer mlp_…'; create one with: mloop keys create --scope predict"
            )
        return principal

    def _lookup(self, token: str, digest: str) -> Principal | None:
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != _PREFIX:
            return None
        with self.store.read() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == parts[1])).first()
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(str(row.hash), f"sha256${digest}"):
            return None
        return Principal(row.key_id, row.name, frozenset(Scope(s) for s in row.scopes))

"""API keys: shown once, stored hashed, scoped, revocable, cached briefly."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mloop._clock import ManualClock
from mloop.auth import KeyStore, Scope
from mloop.config import Settings
from mloop.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from mloop.store import MetadataStore, api_keys


@pytest.fixture
def keys(settings: Settings) -> KeyStore:
    return KeyStore(MetadataStore.from_settings(settings), clock=ManualClock(), cache_ttl_s=10)


def test_a_created_key_verifies_and_only_its_hash_is_stored(keys: KeyStore) -> None:
    info, token = keys.create("ci", ["predict"])
    assert token.startswith(f"mlp_{info.key_id}_")
    principal = keys.verify(token)
    assert principal.key_id == info.key_id and principal.has(Scope.PREDICT)
    with keys.store.read() as conn:
        stored = conn.execute(sa.select(api_keys.c.hash)).scalar_one()
    assert token not in stored and stored.startswith("sha256$")


def test_wrong_malformed_and_revoked_keys_are_refused(keys: KeyStore) -> None:
    info, token = keys.create("ci", ["predict"])
    for bad in ("nope", token[:-2] + "xx", "mlp_000000000000_abc"):
        with pytest.raises(Unauthenticated):
            keys.verify(bad)
    keys.revoke(info.key_id)
    with pytest.raises(Unauthenticated):
        keys.verify(token)
    assert keys.list() == []
    assert keys.list(include_revoked=True)[0].revoked_at is not None
    with pytest.raises(NotFound):
        keys.revoke("missing")


def test_scopes_are_enforced_and_admin_implies_all(keys: KeyStore) -> None:
    _, predict_only = keys.create("app", ["predict"])
    _, admin = keys.create("ops", ["admin"])
    with pytest.raises(Forbidden, match="deploy"):
        keys.verify(predict_only).require(Scope.DEPLOY)
    for scope in Scope:
        keys.verify(admin).require(scope)
    with pytest.raises(InvalidInput, match="Unknown scope"):
        keys.create("x", ["root"])


def test_verified_keys_are_cached_without_a_database_read(keys: KeyStore) -> None:
    _, token = keys.create("app", ["predict"])
    keys.verify(token)
    keys.store.engine.dispose()
    original = keys._lookup
    keys._lookup = lambda *_a: pytest.fail("cache miss")  # type: ignore[method-assign]
    keys.verify(token)
    keys._lookup = original  # type: ignore[method-assign]

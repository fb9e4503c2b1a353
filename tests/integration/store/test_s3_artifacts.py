"""Artifacts on a real S3 API server (moto's server mode on loopback).

What a fleet relies on: models registered by one machine load on another from the
bucket, a changed object is refused by name, and a restarted replica loads from its
local content-addressed cache without downloading the model again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mloop.config import Settings, load_settings
from mloop.errors import IntegrityError
from mloop.registry import Registry
from s3_server import S3Server


def _data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"age": rng.normal(40, 10, 200), "spend": rng.gamma(2.0, 50.0, 200)})
    y = np.where(X["spend"] > 100, "yes", "no")
    return X, y


def _settings(home: Path, bucket: str, server: S3Server, **overrides: object) -> Settings:
    return load_settings(
        env={},
        home=home,
        database_url=f"sqlite:///{home.parent / 'shared.db'}",
        artifacts_url=f"{bucket}/artifacts",
        storage=server.storage_options,
        **overrides,
    )


def _objects(bucket: str, server: S3Server) -> list[str]:
    import s3fs

    fs = s3fs.S3FileSystem(**server.storage_options, skip_instance_cache=True)
    return [p for p in fs.find(bucket) if "/sha256/" in p]


def test_a_model_registered_on_one_machine_loads_on_another_from_the_bucket(
    tmp_path: Path, s3_bucket: str, s3_server: S3Server
) -> None:
    X, y = _data()
    model = LogisticRegression().fit(X, y)
    trainer = Registry(_settings(tmp_path / "trainer", s3_bucket, s3_server))
    mv = trainer.register(model, "churn", training_data=X, target=y, alias="production")
    stored = _objects(s3_bucket, s3_server)
    assert sorted(p.rsplit("/", 1)[1] for p in stored) == sorted(mv.artifacts.values())

    replica = Registry(_settings(tmp_path / "replica", s3_bucket, s3_server))
    got = replica.load("churn@production").predict(X.head(8).to_dict(orient="records"))
    assert list(got.labels) == list(model.predict(X.head(8)))
    # the replica's verified copies are in its own cache, by sha256
    cached = {p.name for p in (tmp_path / "replica" / "artifact-cache").rglob("*") if p.is_file()}
    assert cached == set(mv.artifacts.values())


def test_an_object_changed_in_the_bucket_is_refused_by_name(
    tmp_path: Path, s3_bucket: str, s3_server: S3Server
) -> None:
    import s3fs

    X, y = _data()
    trainer = Registry(_settings(tmp_path / "trainer", s3_bucket, s3_server))
    mv = trainer.register(LogisticRegression().fit(X, y), "churn", training_data=X, target=y)
    fs = s3fs.S3FileSystem(**s3_server.storage_options, skip_instance_cache=True)
    relative, digest = next(iter(mv.artifacts.items()))
    key = next(p for p in _objects(s3_bucket, s3_server) if p.endswith(digest))
    original = fs.cat(key)
    fs.pipe(key, original[:-1] + bytes([original[-1] ^ 1]))

    replica = Registry(_settings(tmp_path / "replica", s3_bucket, s3_server))
    with pytest.raises(
        IntegrityError, match=rf"churn:1/{relative} was modified after registration"
    ):
        replica.load("churn:1")
    # nothing of the refused bytes stays in the cache, so a later load checks again
    cache = tmp_path / "replica" / "artifact-cache"
    assert not any(p.name == digest for p in cache.rglob("*"))


def test_a_changed_cache_file_is_fetched_again_not_served(
    tmp_path: Path, s3_bucket: str, s3_server: S3Server
) -> None:
    X, y = _data()
    model = LogisticRegression().fit(X, y)
    settings = _settings(tmp_path / "replica", s3_bucket, s3_server)
    reg = Registry(settings)
    mv = reg.register(model, "churn", training_data=X, target=y)
    for digest in mv.artifacts.values():
        cached = next((tmp_path / "replica" / "artifact-cache").rglob(digest))
        cached.write_bytes(b"bit rot")
    got = Registry(settings).load("churn:1").predict(X.head(3).to_dict(orient="records"))
    assert list(got.labels) == list(model.predict(X.head(3)))


_LOAD = """
import mloop
predictor = mloop.load("churn@production")
print([str(label) for label in predictor.predict([{"age": 30.0, "spend": 250.0}]).labels])
"""


def _replica_load(home: Path, bucket: str, server: S3Server) -> str:
    """Load and predict in a new process configured only by the environment."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLOOP_", "AWS_"))},
        **server.env,
        "MLOOP_HOME": str(home),
        "MLOOP_DATABASE_URL": f"sqlite:///{home.parent / 'shared.db'}",
        "MLOOP_ARTIFACTS_URL": f"{bucket}/artifacts",
    }
    done = subprocess.run(
        [sys.executable, "-c", _LOAD], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _artifact_gets(server: S3Server, bucket: str) -> int:
    name = bucket.removeprefix("s3://")
    return server.count_requests("GET", f"/{name}/artifacts/sha256/")


def test_a_restarted_replica_loads_from_its_cache_without_downloading(
    tmp_path: Path, s3_bucket: str, s3_server: S3Server
) -> None:
    X, y = _data()
    trainer = Registry(_settings(tmp_path / "trainer", s3_bucket, s3_server))
    trainer.register(LogisticRegression().fit(X, y), "churn", training_data=X, target=y)
    trainer.set_alias("churn", "production", 1)

    before = _artifact_gets(s3_server, s3_bucket)
    first = _replica_load(tmp_path / "replica", s3_bucket, s3_server)
    downloaded = _artifact_gets(s3_server, s3_bucket) - before
    assert first == "['yes']" and downloaded > 0  # cold start: the model came from S3

    restarted = _replica_load(tmp_path / "replica", s3_bucket, s3_server)
    assert restarted == first
    assert _artifact_gets(s3_server, s3_bucket) - before == downloaded  # zero GETs this time


def test_an_unreachable_endpoint_is_a_retryable_503_that_names_what_to_check() -> None:
    import socket

    from mloop.errors import Unavailable
    from mloop.store import ArtifactStore

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = ArtifactStore(
        "s3://nowhere/artifacts",
        endpoint_url=f"http://127.0.0.1:{port}",
        key="k",
        secret="s",
        config_kwargs={"retries": {"max_attempts": 1}},  # [storage] options reach s3fs as-is
        skip_instance_cache=True,
    )
    with pytest.raises(Unavailable, match="cannot be reached.*AWS_ENDPOINT_URL") as caught:
        store.exists("ab" * 32)
    assert caught.value.status_code == 503 and caught.value.retryable

"""Content-addressed artifacts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop.config import load_settings
from mloop.errors import ConfigurationError, IntegrityError
from mloop.store import ArtifactStore, sha256_file


def test_same_bytes_are_stored_once_under_their_hash(tmp_path: Path) -> None:
    store = ArtifactStore((tmp_path / "a").as_uri())
    first = store.put_bytes(b"model weights")
    assert store.put_bytes(b"model weights") == first
    assert len(list((tmp_path / "a").rglob("*"))) == 3  # sha256/, <ab>/, blob
    src = tmp_path / "m.bin"
    src.write_bytes(b"model weights")
    assert sha256_file(src) == first
    assert store.read_bytes(first) == b"model weights"


def test_a_flipped_byte_or_a_missing_blob_is_refused_by_name(tmp_path: Path) -> None:
    store = ArtifactStore((tmp_path / "a").as_uri())
    digest = store.put_bytes(b"0123456789")
    blob = Path(store.local_path(digest))
    blob.write_bytes(b"0123456780")
    with pytest.raises(IntegrityError, match="churn:1/model.skops was modified"):
        store.fetch(digest, tmp_path / "out", name="churn:1/model.skops")
    assert not (tmp_path / "out").exists()
    blob.unlink()
    with pytest.raises(IntegrityError, match="missing"):
        store.read_bytes(digest, name="churn:1/model.skops")


def test_memory_filesystem_works_through_fsspec() -> None:
    store = ArtifactStore("memory://mloop-test-artifacts")
    digest = store.put_bytes(b"abc")
    assert store.exists(digest) and store.read_bytes(digest) == b"abc"


def test_a_local_store_keeps_no_second_copy(tmp_path: Path) -> None:
    store = ArtifactStore((tmp_path / "a").as_uri(), cache_dir=tmp_path / "cache")
    assert store.cache is None
    assert store.read_bytes(store.put_bytes(b"abc")) == b"abc"
    assert not (tmp_path / "cache").exists()


def test_storage_options_and_cache_come_from_settings(tmp_path: Path) -> None:
    (tmp_path / "mloop.toml").write_text(
        'artifacts_url = "memory://mloop-settings-test"\n[storage]\nskip_instance_cache = true\n'
    )
    settings = load_settings(env={}, config_file=tmp_path / "mloop.toml", home=tmp_path / "h")
    assert settings.storage == {"skip_instance_cache": True}
    assert settings.artifacts_cache == str((tmp_path / "h" / "artifact-cache").resolve())
    store = ArtifactStore.from_settings(settings)
    assert store.cache is not None and store.cache.root == Path(settings.artifacts_cache)
    digest = store.put_bytes(b"weights")
    assert store.cache.path(digest).read_bytes() == b"weights"
    off = ArtifactStore.from_settings(settings.with_overrides(artifacts_cache="off"))
    assert off.cache is None and off.read_bytes(digest) == b"weights"


def test_storage_must_be_a_table(tmp_path: Path) -> None:
    (tmp_path / "mloop.toml").write_text('storage = "s3"\n')
    with pytest.raises(ConfigurationError, match=r"\[storage\] must be a table"):
        load_settings(env={}, config_file=tmp_path / "mloop.toml")


def test_storage_options_come_from_the_environment_too(tmp_path: Path) -> None:
    (tmp_path / "mloop.toml").write_text('[storage]\nkey = "from-file"\nsecret = "s"\n')
    env = {"MLOOP_STORAGE__ENDPOINT_URL": "http://minio:9000", "MLOOP_STORAGE__KEY": "from-env"}
    settings = load_settings(env=env, config_file=tmp_path / "mloop.toml")
    assert settings.storage == {
        "endpoint_url": "http://minio:9000",
        "key": "from-env",
        "secret": "s",
    }

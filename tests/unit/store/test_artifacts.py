"""Content-addressed artifacts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop.errors import IntegrityError
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

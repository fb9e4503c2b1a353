"""The artifact cache's size cap: least recently used blobs go first, the newest never."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
from pathlib import Path

import pytest

from mloop.config import load_settings
from mloop.errors import ConfigurationError
from mloop.store import ArtifactStore
from mloop.store._blob_cache import BlobCache, CachedBlob, blobs_to_evict


def _blob(cache: BlobCache, tmp_path: Path, data: bytes, used_at: float) -> str:
    """Add ``data`` to ``cache`` as if it were last used at ``used_at``."""
    digest = hashlib.sha256(data).hexdigest()
    source = tmp_path / f"src-{digest}"
    source.write_bytes(data)
    cache.add(digest, source)
    os.utime(cache.path(digest), (used_at, used_at))
    return digest


def test_the_least_recently_used_blobs_are_chosen_until_the_rest_fit() -> None:
    blobs = [CachedBlob("new", 4, 30.0), CachedBlob("old", 4, 10.0), CachedBlob("mid", 4, 20.0)]
    assert blobs_to_evict(blobs, max_bytes=12, keep="new") == []
    assert blobs_to_evict(blobs, max_bytes=8, keep="new") == ["old"]
    assert blobs_to_evict(blobs, max_bytes=5, keep="new") == ["old", "mid"]
    assert blobs_to_evict(blobs, max_bytes=0, keep="new") == []  # 0: no cap


def test_the_blob_to_keep_stays_even_when_it_alone_is_over_the_cap() -> None:
    blobs = [CachedBlob("big", 100, 1.0), CachedBlob("small", 1, 2.0)]
    assert blobs_to_evict(blobs, max_bytes=10, keep="big") == ["small"]


def test_adding_past_the_cap_evicts_the_blob_read_longest_ago(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache", max_bytes=30)
    a = _blob(cache, tmp_path, b"a" * 10, used_at=1_000)
    b = _blob(cache, tmp_path, b"b" * 10, used_at=2_000)
    c = _blob(cache, tmp_path, b"c" * 10, used_at=3_000)
    assert cache.copy_out(a, tmp_path / "out-a")  # a read: a is now the most recent
    d = hashlib.sha256(b"d" * 10).hexdigest()
    (tmp_path / "d").write_bytes(b"d" * 10)
    cache.add(d, tmp_path / "d")
    assert {blob.digest for blob in cache.blobs()} == {a, c, d}
    assert not cache.path(b).exists()
    assert sum(blob.size for blob in cache.blobs()) <= 30


def test_a_blob_bigger_than_the_cap_is_kept_and_evicts_all_others(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache", max_bytes=15)
    small = _blob(cache, tmp_path, b"s" * 10, used_at=1_000)
    big = hashlib.sha256(b"B" * 40).hexdigest()
    (tmp_path / "big").write_bytes(b"B" * 40)
    cache.add(big, tmp_path / "big")
    assert [blob.digest for blob in cache.blobs()] == [big]
    assert not cache.path(small).exists()
    assert cache.copy_out(big, tmp_path / "out") and (tmp_path / "out").read_bytes() == b"B" * 40


def test_no_cap_keeps_everything(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    for i in range(5):
        _blob(cache, tmp_path, bytes([i]) * 100, used_at=1_000 + i)
    assert len(cache.blobs()) == 5


def test_a_copy_under_way_survives_the_eviction_of_its_blob(tmp_path: Path) -> None:
    """Another process evicts the blob while this one reads it: the reader's bytes are whole."""
    cache = BlobCache(tmp_path / "cache", max_bytes=1)
    data = os.urandom(3 << 20)
    digest = _blob(cache, tmp_path, data, used_at=1_000)
    with open(cache.path(digest), "rb") as reader:
        head = reader.read(1 << 20)
        assert cache.evict(keep="another") == [digest]  # the other process's eviction
        assert not cache.path(digest).exists()
        assert head + reader.read() == data
    # Evicted before a reader opened it: a miss that leaves nothing half-written behind.
    assert cache.copy_out(digest, tmp_path / "out") is False
    assert not (tmp_path / "out").exists()


def test_a_store_fetches_an_evicted_blob_again_from_the_remote(tmp_path: Path) -> None:
    store = ArtifactStore(
        "memory://mloop-cache-cap-test", cache_dir=tmp_path / "cache", cache_max_bytes=10
    )
    first = store.put_bytes(b"first-blob")  # 10 bytes: fits
    second = store.put_bytes(b"second-blob")  # 11 bytes: first evicted, second kept
    assert store.cache is not None
    assert [blob.digest for blob in store.cache.blobs()] == [second]
    assert store.read_bytes(first) == b"first-blob"  # from the remote, cached again
    assert [blob.digest for blob in store.cache.blobs()] == [first]


def test_the_cap_comes_from_settings_and_defaults_to_ten_gibibytes(tmp_path: Path) -> None:
    base = {"MLOOP_ARTIFACTS_URL": "memory://mloop-cap-settings"}
    default = load_settings(env=base, config_file=None, home=tmp_path)
    assert default.artifacts_cache_max_bytes == 10 * 1024**3
    env = {**base, "MLOOP_ARTIFACTS_CACHE_MAX_BYTES": "1048576"}
    store = ArtifactStore.from_settings(load_settings(env=env, config_file=None, home=tmp_path))
    assert store.cache is not None and store.cache.max_bytes == 1 << 20
    with pytest.raises(ConfigurationError, match="artifacts_cache_max_bytes=-1"):
        load_settings(env={**base, "MLOOP_ARTIFACTS_CACHE_MAX_BYTES": "-1"}, config_file=None)


def _share_the_cache(root: str, sources: list[str], seed: int) -> int:
    """One process reading through a small shared cache: cached copies it got, all verified."""
    cache = BlobCache(Path(root), max_bytes=3 * 65536)
    order = random.Random(seed)
    hits = 0
    out = Path(root).parent / f"out-{seed}"
    for _ in range(60):
        source = Path(order.choice(sources))
        digest = source.name
        if cache.copy_out(digest, out):
            assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
            hits += 1
        else:
            cache.add(digest, source)
    return hits


def test_two_processes_evicting_one_cache_only_ever_copy_whole_blobs(tmp_path: Path) -> None:
    sources = []
    for i in range(8):
        data = os.urandom(65536 - i)
        path = tmp_path / "blobs" / hashlib.sha256(data).hexdigest()
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        sources.append(str(path))
    root = tmp_path / "cache"
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        hits = pool.starmap(_share_the_cache, [(str(root), sources, s) for s in (1, 2)])
    assert sum(hits) > 0  # the cache served some reads while the other process evicted
    cache = BlobCache(root, max_bytes=3 * 65536)
    assert sum(blob.size for blob in cache.blobs()) <= cache.max_bytes
    assert not [p for p in root.rglob("*") if ".partial-" in p.name]

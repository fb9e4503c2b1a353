"""A local, content-addressed copy of remote artifacts, so a restarted replica loads from disk.

A cached blob lives at ``<root>/sha256/<first two hex>/<hex digest>`` and is re-hashed
each time it is copied out: a changed or truncated file is dropped and fetched again,
never served. Blobs are immutable, so the cache needs no invalidation; deleting the
folder (or any file in it) is always safe.

With a size cap, adding a blob evicts the least recently used others (a read touches
its blob's mtime) until the cache fits; the blob just added always stays. Several
processes may share one cache: a reader holds its blob open while it copies, and an
unlinked file stays readable until closed, so eviction never cuts a copy short; a blob
evicted before a reader opens it is simply a miss, fetched again from the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BlobCache", "CachedBlob", "blobs_to_evict"]

_CHUNK = 1 << 20
_PARTIAL = ".partial-"


@dataclass(frozen=True)
class CachedBlob:
    """One cached blob as the eviction policy sees it."""

    digest: str
    size: int
    last_used: float  # mtime: when it was added or last copied out


def blobs_to_evict(blobs: Iterable[CachedBlob], max_bytes: int, keep: str) -> list[str]:
    """Digests to drop, least recently used first, so the rest fit in ``max_bytes``.

    ``keep`` is never chosen, even when it alone is over the cap; 0 means no cap.
    """
    ordered = sorted(blobs, key=lambda b: (b.last_used, b.digest))
    total = sum(b.size for b in ordered)
    if max_bytes <= 0 or total <= max_bytes:
        return []
    out: list[str] = []
    for blob in ordered:
        if total <= max_bytes:
            break
        if blob.digest != keep:
            out.append(blob.digest)
            total -= blob.size
    return out


class BlobCache:
    """Verified local copies of blobs, keyed by their sha256, within ``max_bytes`` (0: no cap)."""

    def __init__(self, root: Path, *, max_bytes: int = 0) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def path(self, digest: str) -> Path:
        """Where the blob ``digest`` is (or would be) cached."""
        return self.root / "sha256" / digest[:2] / digest

    def copy_out(self, digest: str, dest: Path) -> bool:
        """Copy the cached blob to ``dest`` if it is cached and intact; False otherwise."""
        cached = self.path(digest)
        hasher = hashlib.sha256()
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(cached, "rb") as src, open(dest, "wb") as out:
                while chunk := src.read(_CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
        except FileNotFoundError:  # not cached (or evicted by another worker meanwhile)
            dest.unlink(missing_ok=True)
            return False
        if hasher.hexdigest() == digest:
            self._touch(cached)
            return True
        # Changed on disk since it was cached: forget it, the store has the original.
        cached.unlink(missing_ok=True)
        dest.unlink(missing_ok=True)
        return False

    def add(self, digest: str, source: Path) -> None:
        """Cache a local file already checked to hash to ``digest`` (atomic, idempotent)."""
        target = self.path(digest)
        if target.exists():
            self._touch(target)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        # Copy under a unique name, then rename: a concurrent reader or writer (another
        # worker of the same replica) sees either no file or the whole blob.
        partial = target.with_name(f"{digest}{_PARTIAL}{uuid.uuid4().hex}")
        try:
            shutil.copyfile(source, partial)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        if self.max_bytes > 0:
            self.evict(keep=digest)

    def blobs(self) -> list[CachedBlob]:
        """Every whole blob in the cache now (files half written by another process excluded)."""
        out: list[CachedBlob] = []
        for path in self.root.glob("sha256/*/*"):
            if _PARTIAL in path.name:
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:  # evicted by another process while we looked
                continue
            out.append(CachedBlob(path.name, stat.st_size, stat.st_mtime))
        return out

    def evict(self, keep: str) -> list[str]:
        """Drop least recently used blobs until the cache fits its cap; never ``keep``."""
        dropped = blobs_to_evict(self.blobs(), self.max_bytes, keep)
        for digest in dropped:
            try:
                self.path(digest).unlink(missing_ok=True)
            except OSError:  # e.g. held open on a platform that refuses: next time
                continue
        return dropped

    @staticmethod
    def _touch(path: Path) -> None:
        # Evicted meanwhile, or a read-only cache: the copy is still good.
        with contextlib.suppress(OSError):
            os.utime(path)

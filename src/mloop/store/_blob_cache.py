"""A local, content-addressed copy of remote artifacts, so a restarted replica loads from disk.

A cached blob lives at ``<root>/sha256/<first two hex>/<hex digest>`` and is re-hashed
each time it is copied out: a changed or truncated file is dropped and fetched again,
never served. Blobs are immutable, so the cache needs no invalidation; deleting the
folder (or any file in it) is always safe.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

__all__ = ["BlobCache"]

_CHUNK = 1 << 20


class BlobCache:
    """Verified local copies of blobs, keyed by their sha256."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

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
        except FileNotFoundError:  # not cached (or dropped by another worker meanwhile)
            dest.unlink(missing_ok=True)
            return False
        if hasher.hexdigest() == digest:
            return True
        # Changed on disk since it was cached: forget it, the store has the original.
        cached.unlink(missing_ok=True)
        dest.unlink(missing_ok=True)
        return False

    def add(self, digest: str, source: Path) -> None:
        """Cache a local file already checked to hash to ``digest`` (atomic, idempotent)."""
        target = self.path(digest)
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        # Copy under a unique name, then rename: a concurrent reader or writer (another
        # worker of the same replica) sees either no file or the whole blob.
        partial = target.with_name(f"{digest}.partial-{uuid.uuid4().hex}")
        try:
            shutil.copyfile(source, partial)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)

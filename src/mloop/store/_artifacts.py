"""Content-addressed artifacts on any fsspec filesystem, sha256-checked on every read.

A blob lives at ``<root>/sha256/<first two hex>/<hex digest>``. Writing the same
bytes twice stores them once. Reading re-hashes the bytes and refuses them with an
``IntegrityError`` that names the artifact when a single byte changed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import fsspec

from mloop.config import Settings
from mloop.errors import ConfigurationError, IntegrityError

__all__ = ["ArtifactStore", "sha256_file"]

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a local file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ArtifactStore:
    """Stores and fetches immutable blobs by their sha256."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        try:
            fs, root = fsspec.core.url_to_fs(url, **storage_options)
        except (ImportError, ValueError) as exc:
            raise ConfigurationError(
                f"Cannot open artifact store {url!r}: {exc}. "
                "For s3:// install s3fs; check MLOOP_ARTIFACTS_URL."
            ) from exc
        self.url = url
        self._fs = fs
        self._root = root.rstrip("/")

    @classmethod
    def from_settings(cls, settings: Settings) -> ArtifactStore:
        """Open the store named by ``settings.artifacts_url``."""
        return cls(settings.artifacts_url)

    def _path(self, digest: str) -> str:
        return f"{self._root}/sha256/{digest[:2]}/{digest}"

    def put_file(self, path: Path) -> str:
        """Store a local file; return its sha256."""
        digest = sha256_file(path)
        target = self._path(digest)
        if not self._fs.exists(target):
            self._fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
            # Upload under a temporary name, then move: a reader never sees half a blob.
            partial = f"{target}.partial-{os.getpid()}"
            self._fs.put_file(str(path), partial)
            self._fs.mv(partial, target)
        return digest

    def put_bytes(self, data: bytes) -> str:
        """Store bytes; return their sha256."""
        with tempfile.NamedTemporaryFile(delete=False) as tmp:
            tmp.write(data)
        try:
            return self.put_file(Path(tmp.name))
        finally:
            os.unlink(tmp.name)

    def exists(self, digest: str) -> bool:
        """True when the blob is stored."""
        return bool(self._fs.exists(self._path(digest)))

    def fetch(self, digest: str, dest: Path, *, name: str = "") -> Path:
        """Copy a blob to ``dest`` after checking its sha256; ``name`` labels errors."""
        label = name or digest
        source = self._path(digest)
        hasher = hashlib.sha256()
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._fs.open(source, "rb") as src, open(dest, "wb") as out:
                while chunk := src.read(_CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
        except FileNotFoundError:
            raise IntegrityError(
                f"Artifact {label} (sha256 {digest[:12]}…) is missing from {self.url}; "
                "restore it from a backup or register the model again.",
                artifact=label,
            ) from None
        if hasher.hexdigest() != digest:
            dest.unlink(missing_ok=True)
            raise IntegrityError(
                f"Artifact {label} was modified after registration: its sha256 is "
                f"{hasher.hexdigest()[:12]}…, the registry recorded {digest[:12]}…. "
                "Refusing to load it; restore the original file or register the model again.",
                artifact=label,
                expected_sha256=digest,
                actual_sha256=hasher.hexdigest(),
            )
        return dest

    def read_bytes(self, digest: str, *, name: str = "") -> bytes:
        """The blob's bytes after checking its sha256."""
        with tempfile.TemporaryDirectory() as tmp:
            return self.fetch(digest, Path(tmp) / "blob", name=name).read_bytes()

    def local_path(self, digest: str) -> str:
        """Where the blob lives inside the store (for operators and tests)."""
        return str(self._path(digest))

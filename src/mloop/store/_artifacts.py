"""Content-addressed artifacts on any fsspec filesystem, sha256-checked on every read.

A blob lives at ``<root>/sha256/<first two hex>/<hex digest>``. Writing the same
bytes twice stores them once. Reading re-hashes the bytes and refuses them with an
``IntegrityError`` that names the artifact when a single byte changed.

A remote store (S3 or any non-local fsspec URL) keeps a verified copy of every blob
it reads or writes in a local ``BlobCache`` (``settings.artifacts_cache``, capped at
``artifacts_cache_max_bytes``), so a restarted replica loads its models from disk
instead of downloading them again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec

from mloop.config import Settings
from mloop.errors import ConfigurationError, IntegrityError, Unavailable
from mloop.store._blob_cache import BlobCache

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

    def __init__(
        self,
        url: str,
        *,
        cache_dir: Path | None = None,
        cache_max_bytes: int = 0,
        **storage_options: Any,
    ) -> None:
        try:
            fs, root = fsspec.core.url_to_fs(url, **storage_options)
        except (ImportError, ValueError) as exc:
            raise ConfigurationError(
                f"Cannot open artifact store {url!r}: {exc}. "
                "For s3:// install mloop[s3]; check MLOOP_ARTIFACTS_URL and [storage]."
            ) from exc
        self.url = url
        self._fs = fs
        self._root = root.rstrip("/")
        self._local = "file" in _protocols(fs)
        # A local store is its own cache; only remote blobs are worth a second copy.
        self.cache = (
            BlobCache(cache_dir, max_bytes=cache_max_bytes)
            if cache_dir is not None and not self._local
            else None
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> ArtifactStore:
        """Open the store named by ``settings.artifacts_url`` with ``[storage]`` options."""
        cache = settings.artifacts_cache
        cache_dir = None if cache.strip().lower() == "off" else Path(cache)
        return cls(
            settings.artifacts_url,
            cache_dir=cache_dir,
            cache_max_bytes=settings.artifacts_cache_max_bytes,
            **dict(settings.storage),
        )

    def _path(self, digest: str) -> str:
        return f"{self._root}/sha256/{digest[:2]}/{digest}"

    def put_file(self, path: Path) -> str:
        """Store a local file; return its sha256."""
        digest = sha256_file(path)
        target = self._path(digest)
        with self._reaching():
            if not self._fs.exists(target):
                if self._local:
                    self._fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
                    # Write under a temporary name, then move: no reader sees half a blob.
                    partial = f"{target}.partial-{os.getpid()}"
                    self._fs.put_file(str(path), partial)
                    self._fs.mv(partial, target)
                else:  # an object store's PUT is atomic already
                    self._fs.put_file(str(path), target)
        if self.cache is not None:
            self.cache.add(digest, path)
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
        with self._reaching():
            return bool(self._fs.exists(self._path(digest)))

    def fetch(self, digest: str, dest: Path, *, name: str = "") -> Path:
        """Copy a blob to ``dest`` after checking its sha256; ``name`` labels errors."""
        if self.cache is not None and self.cache.copy_out(digest, dest):
            return dest
        self._download(digest, dest, name or digest)
        if self.cache is not None:
            self.cache.add(digest, dest)
        return dest

    def _download(self, digest: str, dest: Path, label: str) -> None:
        source = self._path(digest)
        hasher = hashlib.sha256()
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._reaching(), self._fs.open(source, "rb") as src, open(dest, "wb") as out:
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

    def read_bytes(self, digest: str, *, name: str = "") -> bytes:
        """The blob's bytes after checking its sha256."""
        with tempfile.TemporaryDirectory() as tmp:
            return self.fetch(digest, Path(tmp) / "blob", name=name).read_bytes()

    @contextlib.contextmanager
    def _reaching(self) -> Iterator[None]:
        """Turn a remote store's refusals into errors that say what the operator must check."""
        try:
            yield
        except (FileNotFoundError, IntegrityError):
            raise
        except PermissionError as exc:
            if self._local:
                raise
            raise ConfigurationError(
                f"Artifact store {self.url} refused access: {exc}. Check the credentials "
                "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or key / secret in [storage])."
            ) from exc
        except Exception as exc:  # botocore's connection errors are not OSErrors
            if self._local:
                raise
            raise Unavailable(
                f"Artifact store {self.url} cannot be reached: {exc}. Check the endpoint "
                "(AWS_ENDPOINT_URL, or endpoint_url in [storage]) and that it is up."
            ) from exc

    def local_path(self, digest: str) -> str:
        """Where the blob lives inside the store (for operators and tests)."""
        return str(self._path(digest))


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)

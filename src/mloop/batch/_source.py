"""Which Parquet files a path, folder or glob names (local or any fsspec URL)."""

from __future__ import annotations

from collections.abc import Sequence

from mloop.errors import InvalidInput

__all__ = ["parquet_paths"]


def parquet_paths(sources: str | Sequence[str]) -> list[str]:
    """Sorted Parquet files under ``sources`` (files, folders or globs; ``s3://…`` too)."""
    import fsspec

    found: list[str] = []
    for source in [sources] if isinstance(sources, str) else sources:
        fs, _, paths = fsspec.get_fs_token_paths(source)
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        prefix = "" if protocol in ("file", "local") else f"{protocol}://"
        for path in paths:
            if fs.isdir(path):
                found += [prefix + p for p in sorted(fs.find(path)) if p.endswith(".parquet")]
            else:
                found.append(prefix + path)
    if not found:
        raise InvalidInput(f"No Parquet files found under {sources!r}.")
    return sorted(dict.fromkeys(found))

"""Persistence: the metadata database and the content-addressed artifact store."""

from mloop.store._artifacts import ArtifactStore, sha256_file
from mloop.store._metadata import MetadataStore
from mloop.store._tables import aliases, api_keys, audit_events, metadata, model_versions, models

__all__ = [
    "ArtifactStore",
    "MetadataStore",
    "aliases",
    "api_keys",
    "audit_events",
    "metadata",
    "model_versions",
    "models",
    "sha256_file",
]

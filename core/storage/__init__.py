"""Storage backends behind one small Protocol; each backend is its own module, imported lazily.

Every backend is built with the server's `Guards` (core/guards.py): the allowed local folders and the egress rule."""

from __future__ import annotations

import importlib

from core.config import SourceConfig
from core.errors import ConfigError
from core.guards import Guards
from core.retry import Backoff
from core.storage.base import FileInfo, Storage
from core.storage.retrying import RetryingStorage

__all__ = ["FileInfo", "Storage", "open_storage"]

_BACKENDS = {
    "local": ("core.storage.local", "LocalStorage"),
    "s3": ("core.storage.s3", "S3Storage"),
    "azure_blob": ("core.storage.azure", "AzureBlobStorage"),
    "gcs": ("core.storage.gcs", "GCSStorage"),
    "sftp": ("core.storage.sftp", "SFTPStorage"),
}


def open_storage(source: SourceConfig, guards: Guards, retry: Backoff | None = None) -> Storage:
    """Build the backend for a source, confined by `guards`. New backends register here; nothing else changes.
    With `retry`, its transient failures are retried inside the caller (a run) with that backoff."""
    try:
        module_name, class_name = _BACKENDS[source.type]
    except KeyError:
        raise ConfigError(
            f"Source type '{source.type}' is not available in this version.",
            "Choose a local path, S3, Azure Blob, GCS or SFTP.",
            field="source.type",
        ) from None
    if guards.tables is not None:
        guards.tables.refuse_overlap(source)
    backend = getattr(importlib.import_module(module_name), class_name)
    storage: Storage = backend.from_config(source, guards)
    return storage if retry is None else RetryingStorage(storage, retry)

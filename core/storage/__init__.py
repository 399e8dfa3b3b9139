"""Storage backends behind one small Protocol; each backend is its own module, imported lazily.

Every backend is built with the server's `Guards` (core/guards.py): the allowed local folders and the egress rule."""

from __future__ import annotations

import importlib

from core.config import SourceConfig
from core.errors import ConfigError
from core.guards import Guards
from core.storage.base import FileInfo, Storage

__all__ = ["FileInfo", "Storage", "open_storage"]

_BACKENDS = {
    "local": ("core.storage.local", "LocalStorage"),
    "s3": ("core.storage.s3", "S3Storage"),
}


def open_storage(source: SourceConfig, guards: Guards) -> Storage:
    """Build the backend for a source, confined by `guards`. New backends register here; nothing else changes."""
    try:
        module_name, class_name = _BACKENDS[source.type]
    except KeyError:
        raise ConfigError(
            f"Source type '{source.type}' is not available in this version.",
            "Choose a local path or an S3 bucket.",
            field="source.type",
        ) from None
    backend = getattr(importlib.import_module(module_name), class_name)
    return backend.from_config(source, guards)

"""What a configuration may reach from this server: local files under the allowed folders only, and network hosts
the egress rule lets through (core/egress.py). Built once at start-up (app/bootstrap.py) from the settings
`AUTOLOADER_LOCAL_ROOTS` and `AUTOLOADER_EGRESS_ALLOW`, and handed to the storage backends, the services that save
or test a configuration, the alerts and the cluster registry.

Confinement is decided on real paths (`os.path.realpath`): `..`, symbolic links (to a file or a folder) and
/proc/self/... are judged by where they lead, so no path outside a root is ever listed or opened, and no error
ever quotes a byte of such a file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.config import IngestionSpec, SourceConfig
from core.egress import EgressAllow, check_url
from core.errors import ConfigError

ROOTS_SETTING = "AUTOLOADER_LOCAL_ROOTS"
_SYSTEM_TREES = ("/proc", "/sys", "/dev")
HOST_IN_PATH: dict[str, tuple[str, ...]] = {"sftp": ("sftp",), "azure_blob": ("abfss", "abfs", "https")}
"""The schemes of the sources whose path names the host connected to (an Azure path's host is the account's,
not contacted when an endpoint URL is given)."""


class LocalRoots:
    """The folders local sources may read (real paths, symlinks resolved once at start-up)."""

    def __init__(self, roots: Iterable[str]):
        real: list[str] = []
        for root in roots:
            path = os.path.realpath(os.path.expanduser(str(root)))
            if path not in real:
                real.append(path)
        self.roots: tuple[str, ...] = tuple(real)

    def __repr__(self) -> str:
        return f"LocalRoots({list(self.roots)!r})"

    def describe(self) -> str:
        return ", ".join(self.roots) if self.roots else "(none)"

    def contains(self, path: str) -> bool:
        """Whether `path` leads (after `..` and symbolic links) to a root or something inside one."""
        return self.contains_real(os.path.realpath(path))

    def contains_real(self, real_path: str) -> bool:
        return any(_within(real_path, root) for root in self.roots)

    def check(self, path: str, *, field: str = "source.path") -> None:
        """Refuse a source folder (or file) that does not lead inside a root. Nothing is read to decide."""
        if not self.contains(path):
            raise ConfigError(
                f"{path} is outside the folders local sources may read ({self.describe()}).",
                f"Put or mount the files under one of these folders, or add the folder to {ROOTS_SETTING} "
                "(comma-separated) and restart the server.",
                field=field,
            )

    def refuse_unsafe(self, protected: Mapping[str, str]) -> None:
        """Start-up check: no root may be a system tree or hold the server's own files (`protected`: what → path),
        such as the metadata database or the data directory with the secret key."""
        for root in self.roots:
            if root == "/" or any(_within(root, tree) for tree in _SYSTEM_TREES):
                raise ConfigError(
                    f"{ROOTS_SETTING} lists {root}, a system folder local sources may not read "
                    f"(allowed roots: {self.describe()}).",
                    f"Set {ROOTS_SETTING} to the folders that hold the files to load, e.g. /srv/landing.",
                    field=ROOTS_SETTING,
                )
            for what, path in protected.items():
                real = os.path.realpath(path)
                if _within(real, root):
                    raise ConfigError(
                        f"{ROOTS_SETTING} lists {root}, which contains {what} ({real}): a source could read it "
                        f"(allowed roots: {self.describe()}).",
                        f"Set {ROOTS_SETTING} to folders outside {real}, e.g. a landing folder next to it, "
                        "or move the data directory (AUTOLOADER_DATA_DIR) out of the root.",
                        field=ROOTS_SETTING,
                    )


@dataclass(frozen=True, slots=True)
class TablesLocation:
    """Where the embedded engine writes its tables (AUTOLOADER_WAREHOUSE, with the endpoint of its storage
    options). A source that lists it, or lies inside it, would load the tables' own data files as new files at
    every run, so no source may overlap it."""

    url: str
    endpoint: str | None = None

    def overlaps(self, source: SourceConfig) -> bool:
        mine, theirs = _location(self.url), _location(source.path)
        if mine is None or theirs is None or mine[:2] != theirs[:2]:
            return False
        if mine[0] != "local" and _endpoint(self.endpoint) != _endpoint(source.endpoint_url):
            return False  # two services (AWS and a MinIO) may each hold a bucket of that name
        return _within(mine[2], theirs[2]) or _within(theirs[2], mine[2])

    def refuse_overlap(self, source: SourceConfig) -> None:
        if self.overlaps(source):
            raise ConfigError(
                f"The source {source.path} overlaps the warehouse {self.url}, where the tables are written: every "
                "run would load the tables' own data files again.",
                "Point the source at the folder that receives the files, outside the warehouse, or move the "
                "warehouse (AUTOLOADER_WAREHOUSE).",
                field="source.path",
            )


def _location(url: str) -> tuple[str, str, str] | None:
    """(store, bucket or container, folder path starting with /), or None for a store not compared (SFTP)."""
    if url.startswith("file://"):
        return "local", "", os.path.realpath(url[len("file://") :])
    if "://" not in url:  # a local folder, maybe relative (the default warehouse is ./data/warehouse)
        return "local", "", os.path.realpath(url)
    scheme, _, rest = url.partition("://")
    store = {"s3": "s3", "s3a": "s3", "gs": "gcs", "abfss": "azure", "abfs": "azure", "az": "azure"}.get(scheme.lower())
    if store is None:
        return None
    bucket, _, key = rest.partition("/")
    if store == "azure":
        bucket = bucket.partition("@")[0]  # container@account.dfs.core.windows.net: the container names it here
    return store, bucket, "/" + key.strip("/")


_LOOPBACK_NAMES = {"localhost": "127.0.0.1", "::1": "127.0.0.1", "[::1]": "127.0.0.1"}


def _endpoint(url: str | None) -> str:
    """One spelling per service: none and any *.amazonaws.com host are AWS; a loopback name is 127.0.0.1; the
    scheme's default port is explicit."""
    if not url:
        return "aws"
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if host == "amazonaws.com" or host.endswith(".amazonaws.com"):
        return "aws"
    host = _LOOPBACK_NAMES.get(host, host)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower(), 0)
    except ValueError:
        port = 0
    return f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class Guards:
    """The rules together, as the storage factory and the services receive them."""

    local_roots: LocalRoots
    egress: EgressAllow
    tables: TablesLocation | None = None

    def check_spec(self, spec: IngestionSpec) -> None:
        """Refuse, before anything is stored or read, a configuration that reaches outside: a local path outside
        the roots, a storage endpoint (S3, Azure, GCS), an SFTP host, an Azure account host or a webhook on a
        refused address; and a source overlapping the warehouse."""
        source = spec.source
        if self.tables is not None:
            self.tables.refuse_overlap(source)
        if source.type == "local":
            self.local_roots.check(source.path)
        if source.endpoint_url:
            check_url(source.endpoint_url, self.egress, field="source.endpoint_url")
        if source.type == "sftp" or (source.type == "azure_blob" and not source.endpoint_url):
            check_url(source.path, self.egress, field="source.path", schemes=HOST_IN_PATH[source.type])
        if spec.quality.webhook_url:
            check_url(spec.quality.webhook_url, self.egress, field="quality.webhook_url")


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")

"""What a configuration may reach from this server: local files under the allowed folders only, and network hosts
the egress rule lets through (core/egress.py). Built once at start-up (app/bootstrap.py) from the settings
`AUTOLOADER_LOCAL_ROOTS` and `AUTOLOADER_EGRESS_ALLOW`, and handed to the storage backends, the services that save
or test a configuration, the alerts and the cluster registry.

Confinement is decided on real paths (`os.path.realpath`): `..`, symbolic links (to a file or a folder) and
/proc/self/... are judged by where they lead, so no path outside a root is ever listed or opened, and no error
ever quotes a byte of such a file.
"""

from __future__ import annotations

import ipaddress
import os
import socket
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

    def __init__(self, roots: Iterable[str], excluded: Iterable[str] = ()):
        real: list[str] = []
        for root in roots:
            path = os.path.realpath(os.path.expanduser(str(root)))
            if path not in real:
                real.append(path)
        self.roots: tuple[str, ...] = tuple(real)
        self.excluded: tuple[str, ...] = tuple(os.path.realpath(path) for path in excluded)
        """Folders inside the roots that no source may read: a local warehouse, which a symbolic link in a source
        could otherwise lead into (its data files would load again at every run)."""

    def __repr__(self) -> str:
        return f"LocalRoots({list(self.roots)!r}, excluded={list(self.excluded)!r})"

    def describe(self) -> str:
        return ", ".join(self.roots) if self.roots else "(none)"

    def contains(self, path: str) -> bool:
        """Whether `path` leads (after `..` and symbolic links) to a root or something inside one; not a link that
        cannot be resolved (removed while it was read, say)."""
        real = realpath_or_none(path)
        return real is not None and self.contains_real(real)

    def contains_real(self, real_path: str) -> bool:
        return any(_within(real_path, root) for root in self.roots) and not self.excluding(real_path)

    def excluding(self, real_path: str) -> str | None:
        """The excluded folder `real_path` lies in, if any."""
        return next((folder for folder in self.excluded if _within(real_path, folder)), None)

    def refusal(self, path: str) -> str:
        """Why `path` may not be read, in words for a run's skipped list or an error."""
        return self.refusal_real(realpath_or_none(path) or os.path.abspath(path))

    def refusal_real(self, real_path: str) -> str:
        warehouse = self.excluding(real_path)
        if warehouse is not None:
            return f"leads into the warehouse ({warehouse}), where the tables are written"
        return f"leads outside the folders local sources may read ({self.describe()})"

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
        if mine is None or theirs is None or mine.store != theirs.store or mine.bucket != theirs.bucket:
            return False
        if mine.account and theirs.account and mine.account != theirs.account:
            return False
        if not (_within(mine.folder, theirs.folder) or _within(theirs.folder, mine.folder)):
            return False
        # two services (AWS and a MinIO) may each hold a bucket of that name; asked last, as it may resolve names
        return mine.store == "local" or _same_service(self.endpoint, source.endpoint_url)

    def local_folder(self) -> str | None:
        """The warehouse's real path when it is a local folder."""
        location = _location(self.url)
        return location.folder if location is not None and location.store == "local" else None

    def refuse_overlap(self, source: SourceConfig) -> None:
        if self.overlaps(source):
            raise ConfigError(
                f"The source {source.path} overlaps the warehouse {self.url}, where the tables are written: every "
                "run would load the tables' own data files again.",
                "Point the source at the folder that receives the files, outside the warehouse, or move the "
                "warehouse (AUTOLOADER_WAREHOUSE).",
                field="source.path",
            )


@dataclass(frozen=True, slots=True)
class _Location:
    store: str
    bucket: str  # or container; "" for local folders
    folder: str  # starting with /
    account: str = ""  # an Azure storage account, when the path names it


_STORES = {"s3": "s3", "s3a": "s3", "gs": "gcs", "abfss": "azure", "abfs": "azure", "az": "azure"}


def _location(url: str) -> _Location | None:
    """Where a path points, or None for a store not compared (SFTP). Azure paths are compared in both their forms:
    container@account.dfs.core.windows.net/… and https://account.blob.core.windows.net/container/…"""
    if url.startswith("file://"):
        return _Location("local", "", os.path.realpath(url[len("file://") :]))
    if "://" not in url:  # a local folder, maybe relative (the default warehouse is ./data/warehouse)
        return _Location("local", "", os.path.realpath(url))
    scheme, _, rest = url.partition("://")
    authority, _, key = rest.partition("/")
    store = _STORES.get(scheme.lower())
    if store == "azure":
        container, _, host = authority.partition("@")
        return _Location(store, container, "/" + key.strip("/"), host.partition(".")[0].lower())
    if scheme.lower() == "https" and authority.lower().endswith(".core.windows.net"):
        container, _, key = key.partition("/")
        return _Location("azure", container, "/" + key.strip("/"), authority.partition(".")[0].lower())
    if store is None:
        return None
    return _Location(store, authority, "/" + key.strip("/"))


def _same_service(one: str | None, other: str | None) -> bool:
    """Whether two endpoint URLs reach one service: the same port on a host that resolves to a common address
    (every loopback and unspecified address counting as one); no endpoint and any *.amazonaws.com host are AWS."""
    first, second = _service(one), _service(other)
    if isinstance(first, str) or isinstance(second, str):
        return first == second
    return first[1] == second[1] and bool(first[0] & second[0])


def _service(url: str | None) -> str | tuple[frozenset[str], int]:
    if not url:
        return "aws"
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().rstrip(".")
    if host == "amazonaws.com" or host.endswith(".amazonaws.com"):
        return "aws"
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower(), 0)
    except ValueError:
        port = 0
    return _addresses(host), port


def _addresses(host: str) -> frozenset[str]:
    """The addresses a host name stands for, as the egress rule resolves it (so 127.1, 2130706433, 0x7f000001 and
    localhost. are one host); the name itself when it does not resolve."""
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except (OSError, UnicodeError):
        return frozenset({host})
    addresses = set()
    for text in found:
        address = ipaddress.ip_address(str(text).partition("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        addresses.add("loopback" if address.is_loopback or address.is_unspecified else str(address))
    return frozenset(addresses)


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


def realpath_or_none(path: str) -> str | None:
    """`os.path.realpath`, or None where a symbolic link on the way is removed while it is resolved (Python 3.11
    raises then: found by an attack helper, a link deleted during a listing)."""
    try:
        return os.path.realpath(path)
    except OSError:
        return None


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")

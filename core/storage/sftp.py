"""SFTP servers as a source of files: `sftp://host:port/folder` (paramiko, imported lazily).

The server's host key is pinned: `source.host_key_fingerprint` (SHA256, as `ssh-keygen -lf` prints it) must match
the key the server presents, or nothing is sent (not even the credentials). Without a pin the connection is refused
with the fingerprint the server presented, so Test Connection can show it for the user to confirm and save.
The host passes the egress rule when the storage is built and again, resolved, right before connecting; the
connection goes to the address that was checked.

Credentials: `password` or `private_key` (OpenSSH/PEM text; `password` is then its passphrase) with `username`.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import io
import posixpath
import socket
import stat
import threading
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO, NoReturn
from urllib.parse import unquote, urlsplit

from core.config import CREDENTIAL_TYPES_BY_SOURCE, SourceConfig
from core.egress import EgressAllow, check_url, resolve_checked
from core.errors import (
    AutoloaderError,
    ConfigError,
    SourceNotFound,
    StorageAuthError,
    StorageUnavailable,
)
from core.guards import Guards
from core.storage.base import (
    FileInfo,
    changed_since_listing,
    folder_is_before,
    glob_depth,
    is_hidden,
    literal_prefix,
    matches,
    missing_sdk,
    require_valid_pattern,
    reraise,
    sorts_after,
)
from core.storage.streams import COPY_CHUNK, TranslatingReader, buffered, spooled_copy

DEFAULT_PORT = 22
_PATH_HELP = "An SFTP path looks like sftp://host:22/folder (an absolute folder on the server)."
_GONE_ACTION = "It may have been moved or deleted after it was listed; it is picked up again if it comes back."


class HostKeyMismatch(StorageAuthError):
    """The server presented another host key than the pinned one: possibly an attack, never connected through."""

    code = "host_key_mismatch"


class HostKeyNotPinned(ConfigError):
    """No fingerprint is pinned yet; `fingerprint` is the one the server presented, for the user to confirm."""

    code = "host_key_not_pinned"

    def __init__(self, message: str, action: str, *, fingerprint: str, field: str | None = None):
        super().__init__(message, action, field=field)
        self.fingerprint = fingerprint

    def to_dict(self) -> dict[str, str]:
        """The API's error body carries the fingerprint too, for a console to show and pin in one click."""
        return {**super().to_dict(), "fingerprint": self.fingerprint}


def parse_sftp_url(url: str) -> tuple[str, int, str]:
    """`sftp://host:2222/data/in` -> ("host", 2222, "/data/in")."""
    if not url.startswith("sftp://"):
        raise ConfigError(f"'{url}' is not an SFTP path.", _PATH_HELP, field="source.path")
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ConfigError(f"'{url}' is not a valid SFTP path.", _PATH_HELP, field="source.path") from None
    if not host:
        raise ConfigError(f"'{url}' has no host.", _PATH_HELP, field="source.path")
    if parts.username or parts.password:
        raise ConfigError(
            "The SFTP path may not hold a user name or password.",
            "Remove user@ from the path and enter the user name in the credentials.",
            field="source.path",
        )
    folder = posixpath.normpath("/" + unquote(parts.path).lstrip("/"))
    return host, port or DEFAULT_PORT, folder


def fingerprint_of(key_bytes: bytes) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob: `SHA256:` + unpadded base64."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key_bytes).digest()).decode().rstrip("=")


LINK_NOT_FOLLOWED = (
    "a symbolic link, which an SFTP source does not follow: one inside the folder lists its files a second time "
    "(loaded twice), one outside leads where the source was not pointed. Point the source at the folder that holds "
    "the files, or move them in."
)
"""Why a link is left out (the run's skipped note): SFTP passed over links without a word (an outside attack);
following them loaded files twice through a link and its target, and read outside the folder when a link was
swapped (the next attack)."""


class SFTPStorage:
    """Lists (recursively) and opens the files under a folder of an SFTP server."""

    def __init__(
        self,
        root: str,
        *,
        egress: EgressAllow,
        username: str,
        password: str | None = None,
        private_key: str | None = None,
        host_key_fingerprint: str | None = None,
        timeout: float = 15.0,
        partition_columns: list[str] | None = None,
    ):
        self.host, self.port, self.folder = parse_sftp_url(root)
        self.egress = egress
        check_url(f"http://{_url_host(self.host)}:{self.port}", egress, field="source.path")
        self.root = f"sftp://{_url_host(self.host)}:{self.port}{self.folder.rstrip('/')}/"
        self.skipped: dict[str, str] = {}
        self.partition_columns = partition_columns
        self.username = username
        self._password = password
        self._private_key = private_key
        self.host_key_fingerprint = (host_key_fingerprint or "").rstrip("=") or None
        self.timeout = timeout
        self._session = _Session()
        # A run drops its storage without closing it: the SSH connection (a paramiko thread) ends with the object.
        self._finalizer = weakref.finalize(self, self._session.close)
        self._lock = threading.RLock()

    def __repr__(self) -> str:  # no secrets
        auth = "private_key" if self._private_key else "password"
        return f"SFTPStorage(root={self.root!r}, username={self.username!r}, credentials={auth})"

    @classmethod
    def from_config(cls, source: SourceConfig, guards: Guards) -> SFTPStorage:
        creds = source.credentials
        if creds.type not in CREDENTIAL_TYPES_BY_SOURCE["sftp"] or not creds.username:
            raise ConfigError(
                f"SFTP sources cannot use '{creds.type}' credentials.",
                "Choose a user name with a password or with a private key.",
                field="source.credentials.type",
            )
        return cls(
            source.path,
            egress=guards.egress,
            username=creds.username,
            password=creds.password,
            private_key=creds.private_key if creds.type == "private_key" else None,
            host_key_fingerprint=source.host_key_fingerprint,
            partition_columns=source.partition_columns,
        )

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"

    # -- connection ------------------------------------------------------------------

    def server_fingerprint(self) -> str:
        """The SHA256 fingerprint of the host key the server presents now (no credentials are sent)."""
        transport = self._handshake()
        try:
            return fingerprint_of(transport.get_remote_server_key().asbytes())
        finally:
            transport.close()

    def close(self) -> None:
        with self._lock:
            self._session.close()

    def _paramiko(self) -> Any:
        try:
            import paramiko
        except ImportError as exc:
            raise missing_sdk("SFTP", "paramiko") from exc
        return paramiko

    def _handshake(self) -> Any:
        """A transport whose key exchange is done (host key known), not yet authenticated."""
        paramiko = self._paramiko()
        addresses = resolve_checked(self.host, self.port, self.egress, field="source.path")
        sock = None
        try:
            sock = socket.create_connection((addresses[0], self.port), timeout=self.timeout)
            transport = paramiko.Transport(sock)
            transport.banner_timeout = transport.handshake_timeout = self.timeout
            transport.start_client(timeout=self.timeout)
            return transport
        except Exception as exc:
            if sock is not None:
                sock.close()
            self._raise(exc)

    def _connect(self) -> Any:
        transport = self._handshake()
        try:
            self._verify_host_key(transport)
            self._authenticate(transport)
            transport.set_keepalive(30)
            return transport
        except BaseException:
            transport.close()
            raise

    def _verify_host_key(self, transport: Any) -> None:
        presented = fingerprint_of(transport.get_remote_server_key().asbytes())
        if self.host_key_fingerprint is None:
            raise HostKeyNotPinned(
                f"The host key of SFTP server {self.server} is not pinned yet; the server presents {presented}",
                f"Check with the server's administrator that its key is {presented} (ssh-keygen -lf on the "
                "server's host key), then save it as the source's host key fingerprint.",
                fingerprint=presented,
                field="source.host_key_fingerprint",
            )
        if presented != self.host_key_fingerprint:
            raise HostKeyMismatch(
                f"The SFTP server {self.server} presented host key {presented}, not the pinned "
                f"{self.host_key_fingerprint}: nothing was sent to it",
                "If the server's key was changed on purpose (reinstalled, rotated), confirm the new fingerprint "
                "with its administrator and update the source's host key fingerprint; otherwise someone may be "
                "intercepting the connection: do not change the pin and alert your network team.",
                field="source.host_key_fingerprint",
            )

    def _authenticate(self, transport: Any) -> None:
        paramiko = self._paramiko()
        try:
            if self._private_key:
                transport.auth_publickey(self.username, self._load_key(paramiko))
            else:
                transport.auth_password(self.username, self._password or "")
        except paramiko.AuthenticationException as exc:
            raise StorageAuthError(
                f"The SFTP server {self.server} refused the credentials of user '{self.username}'",
                "Check the user name and the password or private key (and that the server allows that method).",
                field="source.credentials",
                detail=type(exc).__name__,
            ) from None
        except Exception as exc:
            self._raise(exc)

    def _load_key(self, paramiko: Any) -> Any:
        text = self._private_key or ""
        for kind in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
            try:
                return kind.from_private_key(io.StringIO(text), password=self._password or None)
            except paramiko.PasswordRequiredException:
                raise ConfigError(
                    "The SFTP private key is encrypted and no passphrase was given",
                    "Enter the key's passphrase in the password field.",
                    field="source.credentials.password",
                ) from None
            except (paramiko.SSHException, ValueError):
                continue
        raise ConfigError(
            "The SFTP private key could not be read (or its passphrase is wrong)",
            "Paste the whole private key (OpenSSH or PEM; Ed25519, ECDSA or RSA), and its passphrase if it has one.",
            field="source.credentials.private_key",
        )

    def _client(self) -> Any:
        """The shared SFTP session for listing, (re)connected when the previous one died."""
        with self._lock:
            session = self._session
            if session.transport is None or not session.transport.is_active():
                session.close()
                session.transport = self._connect()
                try:
                    session.sftp = session.transport.open_sftp_client()
                except Exception as exc:
                    self._raise(exc)
            return session.sftp

    # -- Storage protocol ------------------------------------------------------------

    def check(self) -> None:
        """Connect (host key, credentials) and stat the folder: the error a listing would raise."""
        sftp = self._client()
        self._stat_folder(sftp)

    def list_files(self, pattern: str | None = None, *, start_after: str | None = None) -> Iterator[FileInfo]:
        """Walk the folder depth-first (names sorted), not descending deeper than the pattern can match; with
        `start_after`, folders whose files all sort before it are not entered."""
        require_valid_pattern(pattern)
        sftp = self._client()
        self._stat_folder(sftp)
        head = literal_prefix(pattern).rstrip("/")
        most = glob_depth(pattern)
        start = posixpath.join(self.folder, head) if head else self.folder
        yield from self._walk(sftp, start, pattern, most, start_after)

    def _walk(
        self, sftp: Any, folder: str, pattern: str | None, most: int | None, start_after: str | None
    ) -> Iterator[FileInfo]:
        try:
            entries = sorted(sftp.listdir_attr(folder), key=lambda entry: entry.filename)
        except OSError as exc:
            if folder != self.folder and getattr(exc, "errno", None) == errno.ENOENT:
                return  # a literal folder of the pattern that does not exist
            self._raise(exc, path=folder)
        except Exception as exc:
            self._raise(exc, path=folder)
        for entry in entries:
            full = posixpath.join(folder, entry.filename)
            relative = full[len(self.folder.rstrip("/")) + 1 :]
            mode = entry.st_mode or 0
            if stat.S_ISLNK(mode):
                if not is_hidden(relative) and sorts_after(self._full_path(full), start_after):
                    self.skipped[self._full_path(full)] = LINK_NOT_FOLLOWED
                continue
            if stat.S_ISDIR(mode):
                if folder_is_before(self._full_path(full) + "/", start_after):
                    continue
                if not is_hidden(relative) and (most is None or relative.count("/") < most):
                    yield from self._walk(sftp, full, pattern, most, start_after)
            elif stat.S_ISREG(mode) and matches(relative, pattern) and sorts_after(self._full_path(full), start_after):
                size = int(entry.st_size or 0)
                mtime = int(entry.st_mtime or 0)
                yield FileInfo(
                    path=self._full_path(full),
                    size=size,
                    modified=datetime.fromtimestamp(mtime, UTC),
                    etag=f"{mtime}-{size}",
                )

    def open(self, path: str, version: str | None = None) -> BinaryIO:
        return self.open_from(path, 0, version)

    def open_from(self, path: str, offset: int, version: str | None = None) -> BinaryIO:
        """The file from byte `offset` on, over its own SFTP channel (reads run in parallel with listings). With
        `version`, the open file's status must match the listing's (as for a local file, a rewrite during the read
        is not caught: SFTP has no versions to pin)."""
        remote = self._locate(path)
        self._client()  # connected, host key checked
        with self._lock:
            transport = self._session.transport
        try:
            channel = transport.open_sftp_client()
        except Exception as exc:
            self._raise(exc, path=remote)
        try:
            handle = channel.open(remote, "rb", bufsize=COPY_CHUNK)
            attributes = handle.stat()
            if version is not None and f"{int(attributes.st_mtime or 0)}-{int(attributes.st_size or 0)}" != version:
                raise changed_since_listing(path)  # before the prefetch thread starts reading
            if offset > 0:
                handle.seek(offset)
            handle.prefetch(attributes.st_size)
        except BaseException as exc:
            channel.close()
            if isinstance(exc, Exception):
                self._raise(exc, path=remote)
            raise

        def close() -> None:
            try:
                handle.close()
            finally:
                channel.close()

        return buffered(TranslatingReader(handle.read, lambda exc: self._raise(exc, path=remote), close))

    def cluster_options(self) -> dict[str, str]:
        """No settings: a cluster reads this source with its own configuration, or not at all (spark_sources)."""
        return {}

    def open_seekable(self, path: str, version: str | None = None) -> BinaryIO:
        """Copy the file into a temporary file (in memory up to 64 MB) for random access."""
        return spooled_copy(lambda: self.open(path, version))

    # -- internals -------------------------------------------------------------------

    def _full_path(self, remote: str) -> str:
        return f"sftp://{_url_host(self.host)}:{self.port}{remote}"

    def _locate(self, path: str) -> str:
        """The server path of a listed path (or of one relative to the root), kept inside the root folder."""
        if path.startswith("sftp://"):
            host, port, remote = parse_sftp_url(path)
            if (host.lower(), port) != (self.host.lower(), self.port):
                raise ConfigError(
                    f"'{path}' is not on the source's server {self.server}.",
                    "Open a file path returned by the listing.",
                )
        else:
            remote = posixpath.normpath(posixpath.join(self.folder, path.lstrip("/")))
        inside = self.folder.rstrip("/") + "/"
        if not remote.startswith(inside):
            raise ConfigError(
                f"'{path}' is outside the source folder {self.folder} on {self.server}.",
                "Open a file path returned by the listing.",
            )
        return remote

    def _stat_folder(self, sftp: Any) -> None:
        try:
            attrs = sftp.stat(self.folder)
        except Exception as exc:
            self._raise(exc)
        if not stat.S_ISDIR(attrs.st_mode or 0):
            raise ConfigError(
                f"{self.folder} on SFTP server {self.server} is a file, not a folder",
                "Set the source path to the folder that holds the files.",
                field="source.path",
            )

    def _raise(self, exc: Exception, *, path: str | None = None) -> NoReturn:
        reraise(exc, self._translate(exc, path=path))

    def _translate(self, exc: BaseException, *, path: str | None = None) -> AutoloaderError | None:
        if isinstance(exc, AutoloaderError):
            return exc
        paramiko = self._paramiko()
        detail = f"{type(exc).__name__}: {exc}"
        code = getattr(exc, "errno", None)
        if isinstance(exc, OSError) and code == errno.ENOENT:
            if path is None or path == self.folder:
                return SourceNotFound(
                    f"Folder {self.folder} does not exist on SFTP server {self.server}",
                    "Check the folder in the source path (it is an absolute path on the server).",
                    field="source.path",
                    detail=detail,
                )
            return SourceNotFound(f"File {self._full_path(path)} does not exist", _GONE_ACTION, detail=detail)
        if isinstance(exc, OSError) and code == errno.EACCES:
            return StorageAuthError(
                f"User '{self.username}' may not read {path or self.folder} on SFTP server {self.server}",
                "Ask the server's administrator for read access to the folder and its files.",
                field="source.credentials",
                detail=detail,
            )
        if isinstance(exc, paramiko.AuthenticationException):
            return StorageAuthError(
                f"The SFTP server {self.server} refused the credentials of user '{self.username}'",
                "Check the user name and the password or private key.",
                field="source.credentials",
                detail=detail,
            )
        if isinstance(exc, paramiko.SSHException | OSError | EOFError):
            return StorageUnavailable(
                f"Could not talk to SFTP server {self.server}" + (f" while reading {path}" if path else ""),
                "Check the host, the port and the network; a scheduled run is retried by itself.",
                detail=detail,
            )
        return None


class _Session:
    """The SSH connection and the SFTP session of a storage (no reference back to it, for the finalizer)."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.sftp: Any = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.transport = self.sftp = None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host

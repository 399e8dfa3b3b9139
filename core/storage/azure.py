"""Azure Blob Storage and ADLS Gen2 as a source of files (through the Blob API, which ADLS Gen2 accounts serve too).

Paths: `abfss://container@account.dfs.core.windows.net/prefix/` or
`https://account.blob.core.windows.net/container/prefix/`. With `endpoint_url` (Azurite, an Azure Stack hub) the
account is addressed path-style at that URL: `{endpoint_url}/{account}`.

Credentials: `connection_string`, `account_key`, `sas` (a SAS token), or `ambient` (azure-identity's
DefaultAzureCredential: environment, managed identity, Azure CLI). The SDKs are imported lazily. Every request
passes the egress rule (core/egress.py) right before it is sent.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC
from typing import Any, BinaryIO, NoReturn

from core.config import CREDENTIAL_TYPES_BY_SOURCE, SourceConfig
from core.egress import EgressAllow, check_connect, check_url
from core.errors import (
    AutoloaderError,
    ConfigError,
    FileRefused,
    SourceNotFound,
    StorageAuthError,
    StorageUnavailable,
    TerminalError,
)
from core.guards import Guards
from core.storage.base import (
    FileInfo,
    LazyClient,
    changed_since_listing,
    folder_key_with_data,
    literal_prefix,
    matches,
    missing_sdk,
    one_level,
    require_valid_pattern,
    reraise,
    sorts_after,
)
from core.storage.streams import COPY_CHUNK, TranslatingReader, buffered, spooled_copy

_PATH_HELP = (
    "An Azure path looks like abfss://container@account.dfs.core.windows.net/prefix/ "
    "or https://account.blob.core.windows.net/container/prefix/."
)
_ABFSS = re.compile(r"^abfss?://(?P<container>[^@/]+)@(?P<host>[^/]+)(?:/(?P<key>.*))?$")
_GONE_ACTION = "It may have been moved or deleted after it was listed; it is picked up again if it comes back."
_AUTH_CODES = {
    "AuthenticationFailed",
    "AuthorizationFailure",
    "AuthorizationPermissionMismatch",
    "AuthorizationSourceIPMismatch",
    "AuthorizationProtocolMismatch",
    "InsufficientAccountPermissions",
    "AccountIsDisabled",
    "InvalidAuthenticationInfo",
    "NoAuthenticationInformation",
}


def parse_azure_url(url: str) -> tuple[str, str, str, str]:
    """(account, container, prefix, base) of an Azure path; `base` + a blob name is that blob's full path."""
    match = _ABFSS.match(url)
    if match:
        host = match["host"]
        container = match["container"]
        key = match["key"] or ""
        base = f"{url.split('://', 1)[0]}://{container}@{host}/"
    elif url.startswith("https://"):
        host, _, rest = url[len("https://") :].partition("/")
        container, _, key = rest.partition("/")
        base = f"https://{host}/{container}/"
    else:
        raise ConfigError(f"'{url}' is not an Azure path.", _PATH_HELP, field="source.path")
    account = host.split(".", 1)[0]
    if not account or not container or not host:
        raise ConfigError(f"'{url}' has no account or container name.", _PATH_HELP, field="source.path")
    return account, container, key, base


class AzureBlobStorage:
    """Lists and opens the blobs under a container prefix (treated as a folder: a trailing `/` is added)."""

    def __init__(
        self,
        root: str,
        *,
        egress: EgressAllow,
        endpoint_url: str | None = None,
        connection_string: str | None = None,
        account_key: str | None = None,
        sas_token: str | None = None,
        page_size: int | None = None,
        partition_columns: list[str] | None = None,
    ):
        account, container, prefix, base = parse_azure_url(root)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.account = account
        self.container = container
        self.prefix = prefix
        self.base = base
        self.root = base + prefix
        self.egress = egress
        self.endpoint_url = endpoint_url.rstrip("/") if endpoint_url else None
        if self.endpoint_url:
            check_url(self.endpoint_url, egress, field="source.endpoint_url")
        self.skipped: dict[str, str] = {}
        self.partition_columns = partition_columns
        self._connection_string = connection_string
        self._account_key = account_key
        self._sas_token = sas_token.lstrip("?") if sas_token else None
        self.page_size = page_size
        self._client = LazyClient(self._make_client)

    def __repr__(self) -> str:  # no secrets
        return f"AzureBlobStorage(root={self.root!r}, endpoint_url={self.endpoint_url!r}, credentials={self._auth})"

    @property
    def _auth(self) -> str:
        if self._connection_string:
            return "connection_string"
        if self._account_key:
            return "account_key"
        return "sas" if self._sas_token else "ambient"

    @classmethod
    def from_config(cls, source: SourceConfig, guards: Guards) -> AzureBlobStorage:
        creds = source.credentials
        if creds.type not in CREDENTIAL_TYPES_BY_SOURCE["azure_blob"]:
            raise ConfigError(
                f"Azure sources cannot use '{creds.type}' credentials.",
                "Choose a connection string, an account key, a SAS token, or ambient credentials.",
                field="source.credentials.type",
            )
        return cls(
            source.path,
            egress=guards.egress,
            endpoint_url=source.endpoint_url,
            connection_string=creds.connection_string if creds.type == "connection_string" else None,
            account_key=creds.account_key if creds.type == "account_key" else None,
            sas_token=creds.sas_token if creds.type == "sas" else None,
            partition_columns=source.partition_columns,
        )

    # -- client ----------------------------------------------------------------------

    @property
    def account_url(self) -> str:
        if self.endpoint_url:
            return f"{self.endpoint_url}/{self.account}"
        return f"https://{self.account}.blob.core.windows.net"

    @property
    def client(self) -> Any:
        """The ContainerClient, created on first use (thread-safe)."""
        return self._client.get()

    def _make_client(self) -> Any:
        try:
            from azure.storage.blob import BlobServiceClient
        except ImportError as exc:
            raise missing_sdk("Azure", "azure-storage-blob azure-identity") from exc
        options: dict[str, Any] = {
            "raw_request_hook": self._check_egress,
            "connection_timeout": 10,
            "read_timeout": 60,
            "retry_total": 2,  # the SDK's own retries, short: the run's retries (RetryingStorage) come after
            "initial_backoff": 0.2,  # waits of about 1.2 s (+-0.5): the SDK's defaults wait 15 s and more
            "increment_base": 1,
            "random_jitter_range": 0.5,
            "max_single_get_size": 4 * COPY_CHUNK,
            "max_chunk_get_size": 4 * COPY_CHUNK,
        }
        try:
            if self._connection_string:
                service = BlobServiceClient.from_connection_string(self._connection_string, **options)
            else:
                service = BlobServiceClient(self.account_url, credential=self._credential(), **options)
        except ValueError as exc:  # a malformed connection string or URL
            raise ConfigError(
                f"The Azure settings for account '{self.account}' are not valid",
                "Check the connection string (or the endpoint URL).",
                field="source.credentials",
                detail=type(exc).__name__,
            ) from None
        check_url(service.url, self.egress, field="source.credentials")
        return service.get_container_client(self.container)

    def _credential(self) -> Any:
        if self._account_key:
            from azure.core.credentials import AzureNamedKeyCredential

            return AzureNamedKeyCredential(self.account, self._account_key)
        if self._sas_token:
            from azure.core.credentials import AzureSasCredential

            return AzureSasCredential(self._sas_token)
        try:
            from azure.identity import DefaultAzureCredential
        except ImportError as exc:
            raise ConfigError(
                "Ambient Azure credentials need the azure-identity package, which is not installed.",
                "Install it with `pip install azure-identity`, or use an account key, SAS or connection string.",
            ) from exc
        return DefaultAzureCredential(exclude_interactive_browser_credential=True)

    def _check_egress(self, request: Any) -> None:
        """Before every request: the host it goes to must still pass the egress rule (DNS rebinding)."""
        check_connect(request.http_request.url, self.egress, field="source.endpoint_url")

    # -- Storage protocol ------------------------------------------------------------

    def check(self) -> None:
        """Raise the error a listing would raise (missing container, refused credentials, endpoint down)."""
        try:
            next(iter(self.client.list_blobs(name_starts_with=self.prefix, results_per_page=1)), None)
        except Exception as exc:
            self._raise(exc)

    def list_files(self, pattern: str | None = None, *, start_after: str | None = None) -> Iterator[FileInfo]:
        """Yield matching blobs page by page, in name order; `start_after` becomes the listing's `startFrom`
        (inclusive; a service that ignores it still lists every blob, and those before it are left out here)."""
        require_valid_pattern(pattern)
        start = len(self.prefix)
        try:
            head = literal_prefix(pattern)
            listing: dict[str, Any] = {"name_starts_with": self.prefix + head, "results_per_page": self.page_size}
            if start_after is not None and start_after.startswith(self.base) and not one_level(pattern):
                listing["start_from"] = start_after[len(self.base) :]
            if one_level(pattern):
                blobs = self.client.walk_blobs(delimiter="/", **listing)
            else:
                blobs = self.client.list_blobs(**listing)
            for blob in blobs:
                if not hasattr(blob, "size"):
                    continue  # a BlobPrefix (a sub-folder) of the grouped listing
                name = blob.name
                if name.endswith("/") or (blob.metadata or {}).get("hdi_isfolder") == "true":
                    if name.endswith("/") and (
                        reason := folder_key_with_data(name[start:], int(blob.size or 0), pattern)
                    ):
                        self.skipped[self.base + name] = reason
                    continue  # a folder marker (ADLS Gen2, consoles)
                if not matches(name[start:], pattern) or not sorts_after(self.base + name, start_after):
                    continue
                yield FileInfo(
                    path=self.base + name,
                    size=int(blob.size or 0),
                    modified=blob.last_modified.astimezone(UTC),
                    etag=(blob.etag or "").strip('"') or None,
                )
        except AutoloaderError:
            raise
        except Exception as exc:
            self._raise(exc)

    def open(self, path: str, version: str | None = None) -> BinaryIO:
        return self.open_from(path, 0, version)

    def open_from(self, path: str, offset: int, version: str | None = None) -> BinaryIO:
        """The blob from byte `offset` on, streamed in chunks (resumes a read that failed part-way). With `version`
        every request is conditional on the blob's etag (If-Match): a rewritten blob raises SourceChanged."""
        name = self._locate(path)
        full = self.base + name
        blob = self.client.get_blob_client(name)
        pinned: dict[str, Any] = {}
        if version is not None:
            from azure.core import MatchConditions

            pinned = {"etag": f'"{version}"', "match_condition": MatchConditions.IfNotModified}
        try:
            if offset > 0:
                size = int(blob.get_blob_properties(**pinned).size)
                if offset >= size:  # the failed read had reached the end
                    return io.BytesIO(b"")
                downloader = blob.download_blob(offset=offset, **pinned)
            else:
                downloader = blob.download_blob(**pinned)
        except Exception as exc:
            self._raise(exc, path=full)
        chunks = downloader.chunks()
        pending = bytearray()

        def read(n: int) -> bytes:
            while len(pending) < n:
                chunk = next(chunks, None)
                if chunk is None:
                    break
                pending.extend(chunk)
            data = bytes(pending[:n])
            del pending[:n]
            return data

        return buffered(TranslatingReader(read, lambda exc: self._raise(exc, path=full)))

    def cluster_options(self) -> dict[str, str]:
        """No settings: a cluster reads this source with its own configuration, or not at all (spark_sources)."""
        return {}

    def open_seekable(self, path: str, version: str | None = None) -> BinaryIO:
        """Download the blob into a temporary file (in memory up to 64 MB) for random access."""
        return spooled_copy(lambda: self.open(path, version))

    # -- internals -------------------------------------------------------------------

    def _locate(self, path: str) -> str:
        if path.startswith(self.base):
            name = path[len(self.base) :]
        elif "://" in path:
            raise ConfigError(
                f"'{path}' is not in container '{self.container}' of account '{self.account}'.",
                "Open a file path returned by the listing.",
            )
        else:
            name = self.prefix + path.lstrip("/")
        if not name or name.endswith("/"):
            raise ConfigError(f"'{path}' is not a blob path.", "Open a file path returned by the listing.")
        return name

    def _credential_action(self) -> str:
        """What to check, for the credential type in use."""
        grant = f"list and read blobs in container '{self.container}'"
        return {
            "account_key": f"Check the account key of storage account '{self.account}' (it may have been rotated).",
            "connection_string": "Check the connection string (its account key may have been rotated).",
            "sas": f"Check the SAS token: not expired, and allowed to {grant} (permissions r and l).",
            "ambient": f"Check that the identity has the 'Storage Blob Data Reader' role, to {grant}.",
        }[self._auth]

    def _where(self) -> str:
        return f"account '{self.account}'" + (f" at {self.endpoint_url}" if self.endpoint_url else "")

    def _raise(self, exc: Exception, *, path: str | None = None) -> NoReturn:
        reraise(exc, self._translate(exc, path=path))

    def _translate(self, exc: BaseException, *, path: str | None = None) -> AutoloaderError | None:
        """Map an azure-core / azure-identity exception to a `core.errors` type (messages carry no secrets)."""
        if isinstance(exc, AutoloaderError):
            return exc
        from azure.core import exceptions as ax

        target = path or self.root
        if isinstance(exc, ax.ClientAuthenticationError):  # azure-identity's errors derive from it
            return StorageAuthError(
                f"Azure refused the credentials for container '{self.container}' in {self._where()}",
                self._credential_action(),
                field="source.credentials",
                detail=_detail(exc),
            )
        if isinstance(exc, ax.HttpResponseError):
            code = str(getattr(exc, "error_code", "") or "")
            status = int(getattr(exc, "status_code", 0) or 0)
            if code == "ContainerNotFound" or (status == 404 and path is None):
                return SourceNotFound(
                    f"Container '{self.container}' does not exist in {self._where()}",
                    "Check the container name and the storage account in the source path.",
                    field="source.path",
                    detail=_detail(exc),
                )
            if status == 404:
                return SourceNotFound(f"File {target} does not exist", _GONE_ACTION, detail=_detail(exc))
            if status == 412 and path is not None:  # a conditional read of a blob rewritten since
                return changed_since_listing(path)
            if code in _AUTH_CODES or status in (401, 403):
                return StorageAuthError(
                    f"Azure refused access to container '{self.container}' in {self._where()} ({code or status})",
                    self._credential_action(),
                    field="source.credentials",
                    detail=_detail(exc),
                )
            if status in (408, 429) or status >= 500 or code in ("ServerBusy", "OperationTimedOut"):
                return StorageUnavailable(
                    f"Azure {self._where()} is busy or failing ({code or status}) while reading {target}",
                    "This is usually temporary; a scheduled run is retried by itself.",
                    detail=_detail(exc),
                )
            if path is not None:  # one blob the service will not serve as it is (BlobArchived: 409)
                return FileRefused(
                    f"Azure refuses to serve {target} ({code or status})",
                    "The other files load; this one is set aside and retried when it changes. A blob in the "
                    "Archive tier must be rehydrated (moved to Hot or Cool) before it can be read.",
                    detail=_detail(exc),
                )
            return TerminalError(
                f"Azure refused the request for {target} ({code or status})",
                "Check the source settings.",
                detail=_detail(exc),
            )
        if isinstance(exc, ax.ServiceRequestError | ax.ServiceResponseError | OSError):
            return StorageUnavailable(
                f"Could not reach Azure {self._where()} while reading {target}",
                "Check the endpoint and the network; a scheduled run is retried by itself.",
                detail=_detail(exc),
            )
        if isinstance(exc, ax.AzureError):
            return StorageUnavailable(
                f"The connection to Azure {self._where()} failed while reading {target}",
                "This is usually temporary; a scheduled run is retried by itself.",
                detail=_detail(exc),
            )
        return None


def _detail(exc: BaseException) -> str:
    """The exception's first line: Azure messages carry the request's headers further down, never its key."""
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"

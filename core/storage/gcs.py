"""Google Cloud Storage as a source of files: `gs://bucket/prefix/`.

Credentials: `service_account` (the key file's JSON), `ambient` (Application Default Credentials: the environment,
gcloud, the metadata server of a GCE/GKE machine), or `anonymous` (emulators only, with `endpoint_url`).
google-cloud-storage is imported lazily. With `endpoint_url`, every request passes the egress rule right before it
is sent, as S3's does.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
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
from core.storage.streams import TranslatingReader, buffered, spooled_copy

READ_ONLY_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
REQUEST_TIMEOUT = (10.0, 60.0)
"""Connect and read timeouts of each request (seconds)."""
SDK_RETRY_SECONDS = 5.0
"""How long the SDK retries one call; the run's own retries (RetryingStorage, the runner) take over after."""
_PATH_HELP = "A GCS path looks like gs://bucket/prefix/."
_GONE_ACTION = "It may have been moved or deleted after it was listed; it is picked up again if it comes back."


def parse_gcs_url(url: str) -> tuple[str, str]:
    """`gs://bucket/some/prefix` -> ("bucket", "some/prefix")."""
    if not url.startswith("gs://"):
        raise ConfigError(f"'{url}' is not a GCS path.", _PATH_HELP, field="source.path")
    bucket, _, key = url[len("gs://") :].partition("/")
    if not bucket:
        raise ConfigError(f"'{url}' has no bucket name.", _PATH_HELP, field="source.path")
    return bucket, key


class GCSStorage:
    """Lists and opens the objects under `gs://bucket/prefix/` (the prefix is a folder: a trailing `/` is added)."""

    def __init__(
        self,
        root: str,
        *,
        egress: EgressAllow,
        endpoint_url: str | None = None,
        service_account_json: str | None = None,
        anonymous: bool = False,
        page_size: int | None = None,
        partition_columns: list[str] | None = None,
    ):
        bucket, prefix = parse_gcs_url(root)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.bucket = bucket
        self.prefix = prefix
        self.root = f"gs://{bucket}/{prefix}"
        self.egress = egress
        self.endpoint_url = endpoint_url.rstrip("/") if endpoint_url else None
        if self.endpoint_url:
            check_url(self.endpoint_url, egress, field="source.endpoint_url")
        if anonymous and not self.endpoint_url:
            raise ConfigError(
                "Anonymous GCS access is for emulators only.",
                "Set the emulator's endpoint URL, or use a service account key or ambient credentials.",
                field="source.credentials.type",
            )
        self.skipped: dict[str, str] = {}
        self.partition_columns = partition_columns
        self._service_account_json = service_account_json
        self._anonymous = anonymous
        self.page_size = page_size
        self._client = LazyClient(self._make_client)

    def __repr__(self) -> str:  # no secrets
        auth = "service_account" if self._service_account_json else "anonymous" if self._anonymous else "ambient"
        return f"GCSStorage(root={self.root!r}, endpoint_url={self.endpoint_url!r}, credentials={auth})"

    @classmethod
    def from_config(cls, source: SourceConfig, guards: Guards) -> GCSStorage:
        creds = source.credentials
        if creds.type not in CREDENTIAL_TYPES_BY_SOURCE["gcs"]:
            raise ConfigError(
                f"GCS sources cannot use '{creds.type}' credentials.",
                "Choose a service account key (JSON) or ambient credentials.",
                field="source.credentials.type",
            )
        return cls(
            source.path,
            egress=guards.egress,
            endpoint_url=source.endpoint_url,
            service_account_json=creds.service_account_json if creds.type == "service_account" else None,
            anonymous=creds.type == "anonymous",
            partition_columns=source.partition_columns,
        )

    # -- client ----------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The storage Client, created on first use (thread-safe)."""
        return self._client.get()

    def _make_client(self) -> Any:
        try:
            from google.cloud import storage
        except ImportError as exc:
            raise missing_sdk("GCS", "google-cloud-storage") from exc
        credentials, project = self._credentials()
        options: dict[str, Any] = {"project": project or "autoloader", "credentials": credentials}
        if self.endpoint_url:
            options["client_options"] = {"api_endpoint": self.endpoint_url}
        # Token refreshes of ambient credentials go to the machine's own metadata server, which the egress rule
        # refuses on purpose for URLs users type; a key file's token_uri is checked like any URL.
        options["_http"] = _checked_session(
            credentials, self._check_egress, check_tokens=self._service_account_json is not None
        )
        try:
            return storage.Client(**options)
        except Exception as exc:
            self._raise(exc)

    def _credentials(self) -> tuple[Any, str | None]:
        if self._anonymous:
            from google.auth.credentials import AnonymousCredentials

            return AnonymousCredentials(), None
        if self._service_account_json:
            from google.oauth2 import service_account

            try:
                info = json.loads(self._service_account_json)
                credentials = service_account.Credentials.from_service_account_info(info, scopes=[READ_ONLY_SCOPE])
                token_uri = str(info.get("token_uri") or "")
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ConfigError(
                    f"The service account key for bucket '{self.bucket}' is not a valid key file",
                    "Paste the whole JSON key file of the service account (type service_account).",
                    field="source.credentials.service_account_json",
                    detail=type(exc).__name__,
                ) from None
            # The key file names the server its tokens come from: it is an outbound connection like any other.
            check_url(token_uri, self.egress, field="source.credentials.service_account_json")
            return credentials, info.get("project_id")
        import google.auth

        try:
            credentials, project = google.auth.default(scopes=[READ_ONLY_SCOPE])
        except Exception as exc:
            self._raise(exc)
        return credentials, project

    @property
    def _call(self) -> dict[str, Any]:
        """Timeout and (short) SDK retry of every call."""
        from google.cloud.storage.retry import DEFAULT_RETRY

        return {"timeout": REQUEST_TIMEOUT, "retry": DEFAULT_RETRY.with_timeout(SDK_RETRY_SECONDS)}

    def _check_egress(self, url: str) -> None:
        """Before every request (API calls and token refreshes): the host it goes to must still pass the egress
        rule (DNS rebinding, a key file whose token_uri points inside)."""
        check_connect(url, self.egress, field="source.endpoint_url" if self.endpoint_url else "source.credentials")

    # -- Storage protocol ------------------------------------------------------------

    def check(self) -> None:
        """Raise the error a listing would raise (missing bucket, refused credentials, endpoint down)."""
        try:
            next(iter(self.client.list_blobs(self.bucket, prefix=self.prefix, max_results=1, **self._call)), None)
        except Exception as exc:
            self._raise(exc)

    def list_files(self, pattern: str | None = None, *, start_after: str | None = None) -> Iterator[FileInfo]:
        """Yield matching objects page by page, in name order; `start_after` becomes the listing's start offset,
        so the objects before it are not even listed."""
        require_valid_pattern(pattern)
        start = len(self.prefix)
        try:
            head = literal_prefix(pattern)
            own = f"gs://{self.bucket}/"
            offset = {}
            if start_after is not None and start_after.startswith(own):
                offset["start_offset"] = start_after[len(own) :]
            blobs = self.client.list_blobs(
                self.bucket,
                prefix=self.prefix + head,
                page_size=self.page_size,
                delimiter="/" if one_level(pattern) else None,
                **offset,
                **self._call,
            )
            for blob in blobs:
                name = blob.name
                if name.endswith("/"):
                    if reason := folder_key_with_data(name[start:], int(blob.size or 0), pattern):
                        self.skipped[f"gs://{self.bucket}/{name}"] = reason
                    continue
                if not matches(name[start:], pattern):
                    continue
                if not sorts_after(f"gs://{self.bucket}/{name}", start_after):
                    continue  # the start offset itself (GCS's offset is inclusive)
                yield FileInfo(
                    path=f"gs://{self.bucket}/{name}",
                    size=int(blob.size or 0),
                    modified=blob.updated.astimezone(UTC),
                    etag=_etag(blob),
                )
        except AutoloaderError:
            raise
        except Exception as exc:
            self._raise(exc)

    def open(self, path: str, version: str | None = None) -> BinaryIO:
        return self.open_from(path, 0, version)

    def open_from(self, path: str, offset: int, version: str | None = None) -> BinaryIO:
        """The object (the generation current now) from byte `offset` on, read in 1 MB ranged requests, each only
        of that generation (ifGenerationMatch: a server whose media link names no generation served the next
        version's ranges, joining two versions in one read). With `version`, a current generation whose etag is not
        it raises SourceChanged; so does a generation replaced part-way."""
        bucket, name = self._locate(path)
        full = f"gs://{bucket}/{name}"
        try:
            blob = self.client.bucket(bucket).get_blob(name, **self._call)
        except Exception as exc:
            self._raise(exc, path=full)
        if blob is None:
            raise SourceNotFound(f"File {full} does not exist", _GONE_ACTION)
        if version is not None and _etag(blob) != version:
            raise changed_since_listing(path)
        size = int(blob.size or 0)
        position = max(offset, 0)
        pinned = {"if_generation_match": blob.generation} if blob.generation else {}
        opened = (str(blob.generation or ""), _etag(blob))

        def read(n: int) -> bytes:
            nonlocal position
            if position >= size or n <= 0:
                return b""
            end = min(position + n, size) - 1
            data: bytes = blob.download_as_bytes(start=position, end=end, checksum=None, **pinned, **self._call)
            if _replaced(blob, opened):
                raise changed_since_listing(path)
            position += len(data)
            return data

        if size == 0:
            return io.BytesIO(b"")
        return buffered(TranslatingReader(read, lambda exc: self._raise(exc, path=full)))

    def cluster_options(self) -> dict[str, str]:
        """No settings: a cluster reads this source with its own configuration, or not at all (spark_sources)."""
        return {}

    def open_seekable(self, path: str, version: str | None = None) -> BinaryIO:
        """Download the object into a temporary file (in memory up to 64 MB) for random access."""
        return spooled_copy(lambda: self.open(path, version))

    # -- internals -------------------------------------------------------------------

    def _locate(self, path: str) -> tuple[str, str]:
        if path.startswith("gs://"):
            bucket, name = parse_gcs_url(path)
        else:
            bucket, name = self.bucket, self.prefix + path.lstrip("/")
        if not name or name.endswith("/"):
            raise ConfigError(f"'{path}' is not an object path.", "Open a file path returned by the listing.")
        return bucket, name

    def _where(self) -> str:
        return f" at {self.endpoint_url}" if self.endpoint_url else ""

    def _raise(self, exc: Exception, *, path: str | None = None) -> NoReturn:
        reraise(exc, self._translate(exc, path=path))

    def _translate(self, exc: BaseException, *, path: str | None = None) -> AutoloaderError | None:
        """Map a google-cloud / google-auth / requests exception to a `core.errors` type."""
        if isinstance(exc, AutoloaderError):
            return exc
        import requests
        from google.api_core import exceptions as gx
        from google.auth import exceptions as ga

        target = path or self.root
        detail = f"{type(exc).__name__}: {str(exc)[:300]}"
        if isinstance(exc, gx.RetryError) and isinstance(exc.cause, Exception):
            return self._translate(exc.cause, path=path)
        if isinstance(exc, ga.DefaultCredentialsError):
            return StorageAuthError(
                f"No usable Google credentials were found for bucket '{self.bucket}'",
                "Configure Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud auth "
                "application-default login, or the machine's service account), or paste a service account key.",
                field="source.credentials",
                detail=detail,
            )
        if isinstance(exc, ga.RefreshError | gx.Unauthorized | gx.Forbidden):
            return StorageAuthError(
                f"GCS refused the credentials for bucket '{self.bucket}'{self._where()}",
                "Check the service account key (not deleted or disabled) and that the account has the "
                f"'Storage Object Viewer' role (storage.objects.list and get) on bucket '{self.bucket}'.",
                field="source.credentials",
                detail=detail,
            )
        if isinstance(exc, gx.NotFound):
            if path is None:
                return SourceNotFound(
                    f"Bucket '{self.bucket}' does not exist{self._where()}",
                    "Check the bucket name in the source path (and the endpoint URL).",
                    field="source.path",
                    detail=detail,
                )
            return SourceNotFound(f"File {target} does not exist", _GONE_ACTION, detail=detail)
        if isinstance(exc, gx.PreconditionFailed) and path is not None:  # a generation replaced while read
            return changed_since_listing(path)
        if isinstance(exc, gx.TooManyRequests | gx.ServerError | gx.RequestRangeNotSatisfiable):
            return StorageUnavailable(
                f"GCS{self._where()} is busy or failing while reading {target}",
                "This is usually temporary; a scheduled run is retried by itself.",
                detail=detail,
            )
        if isinstance(exc, gx.GoogleAPICallError) and path is not None:
            return FileRefused(
                f"GCS refuses to serve {target} ({exc.code})",
                "The other files load; this one is set aside and retried when it changes. An object encrypted with "
                "a customer-supplied key (CSEK) is served only with that key, which the source cannot give.",
                detail=detail,
            )
        if isinstance(exc, gx.GoogleAPICallError):
            return TerminalError(
                f"GCS refused the request for {target} ({exc.code})", "Check the source settings.", detail=detail
            )
        if isinstance(exc, requests.RequestException | ga.TransportError | OSError):
            return StorageUnavailable(
                f"Could not reach GCS{self._where()} while reading {target}",
                "Check the endpoint URL and the network; a scheduled run is retried by itself.",
                detail=detail,
            )
        return None


def _replaced(blob: Any, opened: tuple[str, str | None]) -> bool:
    """Whether a ranged download's answer (its X-Goog-Generation and ETag headers, which the client copies onto
    the blob) came from another version than the one opened."""
    generation, etag = opened
    now = str(blob.generation or "")
    if generation and now:
        return now != generation
    return bool(etag) and bool(blob.etag) and _etag(blob) != etag


def _etag(blob: Any) -> str | None:
    """The object's etag, or its generation (a new one at every write) when the server gives none."""
    etag = (blob.etag or "").strip('"')
    return etag or (str(blob.generation) if blob.generation else None)


def _checked_session(credentials: Any, check: Callable[[str], None], *, check_tokens: bool) -> Any:
    """An authorized requests session that runs `check(url)` before sending each request (and before each token
    refresh with `check_tokens`)."""
    import requests
    from google.auth.transport.requests import AuthorizedSession, Request

    class CheckedTokenSession(requests.Session):
        """The session token refreshes go through (to the key file's token_uri)."""

        def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            check(str(request.url))
            return super().send(request, **kwargs)

    class CheckedSession(AuthorizedSession):
        """Every request it sends, redirects included, is checked first."""

        def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            check(str(request.url))
            return super().send(request, **kwargs)

    auth_request = Request(session=CheckedTokenSession()) if check_tokens else None
    return CheckedSession(credentials, auth_request=auth_request)

"""Amazon S3 and S3-compatible endpoints (SeaweedFS, MinIO, Ceph, R2, ...) as a source of files.

boto3 is imported lazily so that `core` stays importable without it. Every SDK exception is
translated into a `core.errors` type: throttling and network problems are transient
(`StorageUnavailable`); missing buckets, refused credentials and bad settings are terminal.
Messages never contain secrets.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn, cast

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

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


_AUTH_CODES = {
    "AccessDenied",
    "AllAccessDisabled",
    "AccountProblem",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "InvalidSecurity",
    "NotSignedUp",
    "UnauthorizedAccess",
    "RequestTimeTooSkewed",
}
_GONE_ACTION = "It may have been moved or deleted after it was listed; it is picked up again if it comes back."
_NOT_S3_ACTION = (
    "Check that source.endpoint_url is the S3 API endpoint of the store (not its console or web site), with its port."
)
_TRANSIENT_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "ServiceUnavailable",
    "Busy",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
}
_REGION_CODES = {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix")."""
    if not url.startswith("s3://"):
        raise ConfigError(
            f"'{url}' is not an S3 path.", "An S3 path looks like s3://bucket/prefix/.", field="source.path"
        )
    bucket, _, key = url[len("s3://") :].partition("/")
    if not bucket:
        raise ConfigError(
            f"'{url}' has no bucket name.", "An S3 path looks like s3://bucket/prefix/.", field="source.path"
        )
    return bucket, key


class S3Storage:
    """Lists and opens the objects under `s3://bucket/prefix/`.

    The prefix is treated as a folder (a missing trailing `/` is added), so `s3://b/landing`
    never lists `s3://b/landing-old/...`. Credentials are either explicit keys, or `None` for
    the default boto3 chain (environment, profile, instance/task role).

    An `endpoint_url` must pass the egress rule (core/egress.py) when the storage is built and again before every
    request the client sends (a name that now resolves to a refused address is not contacted).
    """

    def __init__(
        self,
        root: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        egress: EgressAllow,
        page_size: int | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
        partition_columns: list[str] | None = None,
    ):
        bucket, prefix = parse_s3_url(root)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.bucket = bucket
        self.prefix = prefix
        self.root = f"s3://{bucket}/{prefix}"
        self.region = region or None
        self.endpoint_url = endpoint_url.rstrip("/") if endpoint_url else None
        self.egress = egress
        if self.endpoint_url:
            check_url(self.endpoint_url, egress, field="source.endpoint_url")
        self.skipped: dict[str, str] = {}
        self.partition_columns = partition_columns
        if (access_key_id is None) != (secret_access_key is None):
            raise ConfigError(
                "S3 access key credentials need both an access key ID and a secret access key.",
                "Fill in both fields, or use ambient credentials.",
                field="source.credentials",
            )
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self._session_token = session_token
        self.page_size = page_size
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_attempts = max_attempts
        self._client = LazyClient(self._make_client)

    def __repr__(self) -> str:  # no secrets
        auth = "access_key" if self._access_key_id else "ambient"
        return f"S3Storage(root={self.root!r}, endpoint_url={self.endpoint_url!r}, credentials={auth})"

    @classmethod
    def from_config(cls, source: SourceConfig, guards: Guards) -> S3Storage:
        creds = source.credentials
        if creds.type not in CREDENTIAL_TYPES_BY_SOURCE["s3"]:
            raise ConfigError(
                f"S3 sources cannot use '{creds.type}' credentials.",
                "Choose ambient credentials (environment, profile or instance role) or an access key.",
                field="source.credentials.type",
            )
        explicit = creds.type == "access_key"
        return cls(
            source.path,
            region=source.region,
            endpoint_url=source.endpoint_url,
            access_key_id=creds.access_key_id if explicit else None,
            secret_access_key=creds.secret_access_key if explicit else None,
            session_token=(creds.session_token or None) if explicit else None,
            egress=guards.egress,
            partition_columns=source.partition_columns,
        )

    def cluster_options(self) -> dict[str, str]:
        """This bucket's S3A settings for a Spark cluster: the source's endpoint, region and access key, scoped to the
        bucket (`fs.s3a.bucket.<bucket>.*`) so other buckets keep the cluster's own settings. Ambient credentials
        leave authentication to the cluster."""
        scope = f"fs.s3a.bucket.{self.bucket}."
        options: dict[str, str] = {}
        if self.endpoint_url:
            options |= {
                "endpoint": self.endpoint_url,
                "path.style.access": "true",  # custom endpoints (MinIO, SeaweedFS, ...) serve path-style URLs
                "connection.ssl.enabled": str(self.endpoint_url.startswith("https://")).lower(),
            }
        if self.region:
            options["endpoint.region"] = self.region
        if self._access_key_id and self._secret_access_key:
            options |= {"access.key": self._access_key_id, "secret.key": self._secret_access_key}
            if self._session_token:
                options |= {
                    "session.token": self._session_token,
                    "aws.credentials.provider": "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider",
                }
            else:
                options["aws.credentials.provider"] = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        return {scope + key: value for key, value in options.items()}

    # -- client ----------------------------------------------------------------------

    @property
    def client(self) -> S3Client:
        """The boto3 client, created on first use (thread-safe; clients are shareable)."""
        return self._client.get()

    def _make_client(self) -> S3Client:
        try:
            import boto3
            import botocore.session
            from botocore.config import Config
        except ImportError as exc:
            raise missing_sdk("S3", "boto3") from exc
        options: dict[str, Any] = {
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            "retries": {"max_attempts": self.max_attempts, "mode": "standard"},
            "user_agent_extra": "autoloader",
        }
        if self.endpoint_url:
            # S3-compatible servers rarely support virtual-hosted buckets or the newest checksums.
            options["s3"] = {"addressing_style": "path"}
            options["request_checksum_calculation"] = "when_required"
            options["response_checksum_validation"] = "when_required"
        core_session = botocore.session.get_session()
        core_session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=iso_timestamp)
        session = boto3.session.Session(
            aws_access_key_id=self._access_key_id,
            aws_secret_access_key=self._secret_access_key,
            aws_session_token=self._session_token,
            botocore_session=core_session,
        )
        try:
            client = session.client(
                "s3", region_name=self.region, endpoint_url=self.endpoint_url, config=Config(**options)
            )
        except ValueError as exc:  # botocore raises ValueError for a malformed endpoint URL
            raise ConfigError(
                f"The endpoint URL '{self.endpoint_url}' is not valid.",
                "Use a full URL such as https://s3.example.com or http://127.0.0.1:8333.",
                field="source.endpoint_url",
                detail=str(exc),
            ) from exc
        except Exception as exc:
            self._raise(exc)
        if self.endpoint_url:
            client.meta.events.register("before-send.s3", self._check_egress)
        return client

    def _check_egress(self, request: Any, **_: Any) -> None:
        """Before every request: the host it goes to must still pass the egress rule (DNS rebinding)."""
        check_connect(request.url, self.egress, field="source.endpoint_url")

    # -- Storage protocol ------------------------------------------------------------

    def check(self) -> None:
        """Raise the error a listing would raise (missing bucket, refused keys, endpoint down)."""
        try:
            listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
        except Exception as exc:
            self._raise(exc)
        if not listed.get("Contents"):
            self._refuse_a_file_as_root()

    def _refuse_a_file_as_root(self) -> None:
        """s3://bucket/landing/a.json names an object, not a folder: nothing is under `landing/a.json/`, and every
        run would find no new files. Asked only when a listing found nothing."""
        key = self.prefix.rstrip("/")
        if not key:
            return
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception:  # not an object (or not visible to these keys): an empty folder, as listed
            return
        folder, _, name = key.rpartition("/")
        raise ConfigError(
            f"The source path s3://{self.bucket}/{key} is a file, not a folder.",
            f"Set the source path to its folder, s3://{self.bucket}/{folder + '/' if folder else ''}, and the file "
            f"pattern to {name}.",
            field="source.path",
        )

    def list_files(self, pattern: str | None = None, *, start_after: str | None = None) -> Iterator[FileInfo]:
        """Yield matching objects page by page, in key order, without holding the whole listing; `start_after`
        becomes S3's StartAfter, so the objects before it are not even listed."""
        require_valid_pattern(pattern)
        client = self.client
        head = literal_prefix(pattern)
        list_prefix = self.prefix + head
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": list_prefix}
        if one_level(pattern):
            params["Delimiter"] = "/"
        if self.page_size:
            params["PaginationConfig"] = {"PageSize": self.page_size}
        own = f"s3://{self.bucket}/"
        if start_after is not None and start_after.startswith(own) and start_after[len(own) :] > list_prefix:
            params["StartAfter"] = start_after[len(own) :]
        start, listed = len(self.prefix), False
        try:
            for page in client.get_paginator("list_objects_v2").paginate(**params):
                for obj in page.get("Contents", ()):
                    key = obj["Key"]
                    listed = True
                    if key.endswith("/") and key.startswith(list_prefix):  # a "directory marker" of consoles and tools
                        if reason := folder_key_with_data(key[start:], int(obj.get("Size", 0)), pattern):
                            self.skipped[f"s3://{self.bucket}/{key}"] = reason
                        continue
                    if not key.startswith(list_prefix):
                        continue  # a key some stores answer beside the prefix
                    if not matches(key[start:], pattern) or not sorts_after(f"s3://{self.bucket}/{key}", start_after):
                        continue
                    etag = obj.get("ETag")
                    yield FileInfo(
                        path=f"s3://{self.bucket}/{key}",
                        size=int(obj.get("Size", 0)),
                        modified=obj["LastModified"].astimezone(UTC),
                        etag=etag.strip('"') if etag else None,
                    )
        except AutoloaderError:
            raise
        except Exception as exc:
            self._raise(exc)
        if not listed and start_after is None and not head:
            self._refuse_a_file_as_root()

    def open(self, path: str, version: str | None = None) -> BinaryIO:
        """A buffered stream over the object's body; network errors surface as core errors. With `version` the
        GET is conditional (If-Match): a rewritten object raises SourceChanged."""
        return self.open_from(path, 0, version)

    def open_from(self, path: str, offset: int, version: str | None = None) -> BinaryIO:
        """The object from byte `offset` on (a ranged GET), to resume a read that failed part-way; with `version`,
        only if the object is still that version, so that a resumed read never joins two versions."""
        bucket, key = self._locate(path)
        request: dict[str, str] = {"Bucket": bucket, "Key": key}
        if offset > 0:
            request["Range"] = f"bytes={offset}-"
        if version is not None:
            request["IfMatch"] = f'"{version}"'
        try:
            response = self.client.get_object(**request)
        except Exception as exc:
            if _status(exc) == 412:
                raise changed_since_listing(path) from exc
            if offset > 0 and _status(exc) == 416:  # the failed read had reached the end
                return cast(BinaryIO, io.BytesIO(b""))
            self._raise(exc, bucket=bucket, path=f"s3://{bucket}/{key}")
        return self._body(response, bucket, key)

    def open_seekable(self, path: str, version: str | None = None) -> BinaryIO:
        """Download the object into a temporary file (in memory up to 64 MB) for random access."""
        return spooled_copy(lambda: self.open(path, version))

    def _body(self, response: Any, bucket: str, key: str) -> BinaryIO:
        """A buffered stream over a GET's body; a failure while reading surfaces as a core error."""
        body = response["Body"]
        path = f"s3://{bucket}/{key}"
        return buffered(
            TranslatingReader(body.read, lambda exc: self._raise(exc, bucket=bucket, path=path), body.close)
        )

    # -- internals -------------------------------------------------------------------

    def _locate(self, path: str) -> tuple[str, str]:
        if path.startswith("s3://"):
            bucket, key = parse_s3_url(path)
        else:  # a key relative to the root
            bucket, key = self.bucket, self.prefix + path.lstrip("/")
        if not key or key.endswith("/"):
            raise ConfigError(f"'{path}' is not an object path.", "Open a file path returned by the listing.")
        return bucket, key

    def _where(self) -> str:
        return f" at {self.endpoint_url}" if self.endpoint_url else ""

    def _raise(self, exc: Exception, *, bucket: str | None = None, path: str | None = None) -> NoReturn:
        """Re-raise an SDK exception as its `core.errors` type; anything else propagates unchanged."""
        reraise(exc, self._translate(exc, bucket=bucket, path=path))

    def _translate(
        self, exc: BaseException, *, bucket: str | None = None, path: str | None = None
    ) -> AutoloaderError | None:
        """Map a boto3/botocore exception to a `core.errors` type (messages carry no secrets)."""
        if isinstance(exc, AutoloaderError):
            return exc
        from botocore import exceptions as bx

        bucket = bucket or self.bucket
        target = path or self.root
        if isinstance(exc, RecursionError):  # botocore's region redirector follows a 302 without a region for ever
            return TerminalError(
                f"The endpoint keeps redirecting the S3 request for {target}, not answering as S3 does",
                _NOT_S3_ACTION,
                field="source.endpoint_url",
            )
        if isinstance(exc, bx.ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            detail = f"{code} (HTTP {status}): {error.get('Message', '')}".strip()
            if code == "NoSuchBucket" or (status == 404 and path is None):
                return SourceNotFound(
                    f"Bucket '{bucket}' does not exist{self._where()}",
                    "Check the bucket name (and the region or endpoint URL).",
                    field="source.path",
                    detail=detail,
                )
            if code in ("NoSuchKey", "404", "NotFound") or status == 404:
                return SourceNotFound(
                    f"File {target} does not exist",
                    _GONE_ACTION,
                    detail=detail,
                )
            if code == "InvalidAccessKeyId":
                return StorageAuthError(
                    f"S3 does not recognise the access key ID used for bucket '{bucket}'{self._where()}",
                    "Check the access key ID, or that the key is still active.",
                    field="source.credentials",
                    detail=detail,
                )
            if code == "SignatureDoesNotMatch":
                return StorageAuthError(
                    f"S3 rejected the request signature for bucket '{bucket}'{self._where()}",
                    "Check the secret access key: it does not match the access key ID.",
                    field="source.credentials",
                    detail=detail,
                )
            if code in ("ExpiredToken", "InvalidToken", "TokenRefreshRequired"):
                return StorageAuthError(
                    "The S3 session token is expired or invalid",
                    "Provide a fresh session token, or use long-lived keys or an instance role.",
                    field="source.credentials",
                    detail=detail,
                )
            if code == "RequestTimeTooSkewed":
                return StorageAuthError(
                    "S3 refused the request because this machine's clock is wrong",
                    "Synchronise the system clock (NTP) of the machine that runs Autoloader.",
                    detail=detail,
                )
            if code in _AUTH_CODES or status in (401, 403):
                return StorageAuthError(
                    f"Access to {target} was denied",
                    "Check the access key, or that the credentials (or the role) have the s3:ListBucket "
                    f"permission on bucket '{bucket}' and s3:GetObject on its objects.",
                    field="source.credentials",
                    detail=detail,
                )
            if code in _REGION_CODES or status == 301:
                return ConfigError(
                    f"Bucket '{bucket}' is in a different region than the one configured",
                    "Set the source region to the bucket's region.",
                    field="source.region",
                    detail=detail,
                )
            if code == "InvalidBucketName":
                return ConfigError(
                    f"'{bucket}' is not a valid bucket name",
                    "Bucket names use lowercase letters, digits, dots and hyphens.",
                    field="source.path",
                    detail=detail,
                )
            if code in _TRANSIENT_CODES or status in (408, 429) or status >= 500:
                return StorageUnavailable(
                    f"S3{self._where()} is busy or failing ({code or status}) while reading {target}",
                    "This is usually temporary; a scheduled run is retried by itself.",
                    detail=detail,
                )
            if path is not None:
                return FileRefused(
                    f"S3 refuses to serve {target} ({detail})",
                    "The other files load; this one is set aside and retried when it changes. If it was stored with "
                    "a customer-provided key (SSE-C), S3 serves it only with that key, which the source cannot give: "
                    "have the producer write it without SSE-C (SSE-S3 or SSE-KMS are read as usual).",
                    detail=detail,
                )
            if isinstance(status, int) and 300 <= status < 400:
                return TerminalError(
                    f"The endpoint answered the S3 request for {target} with HTTP {status}, not as S3 does",
                    _NOT_S3_ACTION,
                    field="source.endpoint_url",
                    detail=detail,
                )
            return TerminalError(
                f"S3 refused the request for {target} ({code or status})",
                "Check the source settings.",
                detail=detail,
            )
        if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError | bx.CredentialRetrievalError):
            return StorageAuthError(
                "No usable AWS credentials were found for the S3 source",
                "Configure ambient credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, an AWS profile, "
                "or an instance/task role), or enter an access key in the source settings.",
                field="source.credentials",
                detail=type(exc).__name__,
            )
        if isinstance(exc, bx.TokenRetrievalError | bx.UnauthorizedSSOTokenError):
            return StorageAuthError(
                "The AWS SSO session for the S3 source has expired",
                "Log in again (aws sso login) or use an access key or an instance role.",
                field="source.credentials",
                detail=type(exc).__name__,
            )
        if isinstance(exc, bx.SSLError):
            return ConfigError(
                f"The TLS connection to S3{self._where()} failed",
                "Check the endpoint URL (http vs https) and that its certificate is trusted.",
                field="source.endpoint_url",
                detail=str(exc),
            )
        if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ProxyConnectionError):
            return StorageUnavailable(
                f"Could not connect to S3{self._where() or ' (' + (self.region or 'default region') + ')'}",
                "Check the endpoint URL and the network; a scheduled run is retried by itself.",
                detail=str(exc),
            )
        if isinstance(exc, bx.ReadTimeoutError | bx.HTTPClientError | bx.IncompleteReadError | bx.ConnectionError):
            return StorageUnavailable(
                f"The connection to S3{self._where()} failed while reading {target}",
                "This is usually temporary; a scheduled run is retried by itself.",
                detail=str(exc),
            )
        if isinstance(exc, bx.NoRegionError):
            return ConfigError(
                "The S3 source needs a region", "Set the source region (e.g. us-east-1).", field="source.region"
            )
        if isinstance(exc, bx.ParamValidationError):
            return ConfigError(f"Invalid S3 request for {target}", "Check the bucket name and path.", detail=str(exc))
        if isinstance(exc, OSError | bx.BotoCoreError):
            return StorageUnavailable(
                f"The connection to S3{self._where()} failed while reading {target}",
                "This is usually temporary; a scheduled run is retried by itself.",
                detail=f"{type(exc).__name__}: {exc}",
            )
        return None  # not an SDK or I/O error (a bug): let it propagate unchanged


def _status(exc: BaseException) -> int:
    """The HTTP status of a botocore ClientError (0 for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return 0
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def iso_timestamp(text: str) -> datetime:
    """A listing's LastModified (ISO 8601, e.g. 2026-12-01T02:33:12.000Z) as an aware datetime, parsed by the
    standard library: botocore's default parser (dateutil) was most of the client time of listing 100,000 objects.
    Any other form goes to botocore's parser."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        from botocore.utils import parse_timestamp

        return parse_timestamp(text)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)

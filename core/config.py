"""The ingestion configuration (PRODUCT.md §14). Field names are the API contract.

Every field is bounded where it enters (sizes, 64-bit integers, formats), so that one request cannot store a value
that later breaks a read, a run or the scheduler. The checks that depend on the moment or on the plain form of a
value (a cron that fires within 5 years, a secret not in the stored `enc:v1:` form, column types, e-mail and webhook
formats) apply to input only: a spec read back from the database is validated with `context=STORED`, so a row
saved under older rules still loads.
"""

from __future__ import annotations

import math
import re
import unicodedata
import warnings
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core.errors import ConfigError
from core.schedule import check_fires, check_input, check_zone
from core.schedule import validate as validate_schedule

SourceType = Literal["s3", "azure_blob", "gcs", "sftp", "local"]
FormatType = Literal["json", "csv", "parquet", "avro", "orc", "xml", "text"]
SchemaPolicy = Literal["pause", "auto_merge", "rescue", "fail"]
WriteMode = Literal["create", "append", "overwrite", "merge"]
ScheduleMode = Literal["scheduled", "continuous", "manual"]

SUPPORTED_SOURCES: tuple[str, ...] = ("local", "s3", "azure_blob", "gcs", "sftp")
EMBEDDED_FORMATS: tuple[str, ...] = ("json", "csv", "parquet", "avro", "orc", "xml", "text")
SECRET_FIELDS = (
    "secret_access_key",
    "session_token",
    "connection_string",
    "password",
    "service_account_json",
    "account_key",
    "sas_token",
    "private_key",
)
SECRET_MASK = "********"
"""What the API shows in place of a stored secret; sent back unchanged, it keeps the secret."""


def webhook_origin(url: str) -> str:
    """A webhook URL's scheme and host (and port), without user info: all of it that may be shown, stored in the
    clear or logged (the path of a Slack or Teams hook is the token that lets anyone post)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def masked_webhook(url: str | None) -> str | None:
    """A webhook URL as shown back: its origin, the rest replaced by the mask."""
    if not url:
        return url
    return f"{webhook_origin(url)}/{SECRET_MASK}"


# `schema_json` is the API's field name; it shadows pydantic's deprecated BaseModel.schema_json on purpose.
warnings.filterwarnings("ignore", message='Field name "schema_json"', category=UserWarning)

MAX_ID = 2**63 - 1
"""The largest id (and count) the metadata database stores: a 64-bit signed integer."""
MIN_INTERVAL_SECONDS = 5
"""Continuous mode checks at most this often (input only: a stored shorter interval still loads and runs)."""
MAX_INTERVAL_SECONDS = 7 * 24 * 3600
MAX_COLUMNS = 10_000
ENCRYPTED_PREFIX = "enc:v1:"
"""How a stored secret starts (app/secrets_box.py); a plain secret starting so would be kept as if encrypted."""

STORED: dict[str, Any] = {"stored": True}
"""Validation context for a spec read back from the database: the input-only checks are skipped."""

IDENT_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
_IDENT = re.compile(IDENT_PATTERN)
_EMAIL_PATTERN = r"^[^@\s<>,;:\"()\[\]]+@[^@\s<>,;:\"()\[\]]+\.[^@\s<>,;:\"()\[\]]+$"
_EMAIL = re.compile(_EMAIL_PATTERN)
_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$", re.IGNORECASE)


def is_input(info: ValidationInfo) -> bool:
    """True unless the spec is being read back from the database (`context=STORED`)."""
    return not (isinstance(info.context, dict) and info.context.get("stored"))


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character (\\u0000); remove it")
    return value


_JOINERS = frozenset("\u200c\u200d")
"""Format characters a name may hold: ZWNJ and ZWJ (emoji sequences and Persian names need them)."""
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
"""Letters and symbols that show as nothing (Hangul fillers, the blank Braille pattern)."""


def _hidden(c: str) -> bool:
    """A control, format (zero-width spaces, bidi marks and overrides, invisible operators, tags) or line/paragraph
    separator character: it hides in a name or makes it read otherwise."""
    return unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") and c not in _JOINERS


def name_as_entered(value: str) -> str:
    """A name as it is saved: NFC (`café` typed two ways is one name) without surrounding spaces."""
    return unicodedata.normalize("NFC", value).strip()


def _ingestion_name(value: str, info: ValidationInfo) -> str:
    """A name as entered: normalised (`name_as_entered`), holding something to see, no control characters. The
    cards, the detail page, alerts and `autoloader run NAME` show it; a blank one (spaces, zero-width characters, a
    lone accent) showed as nothing and a tab or an RTL override as another name. A stored name is read as it is:
    an older version may have saved one these checks refuse, and it must still load to be renamed or deleted."""
    if not is_input(info):
        return value
    name = name_as_entered(value)
    hidden = sorted({f"U+{ord(c):04X}" for c in name if _hidden(c)})
    if hidden:
        raise ValueError(f"must not contain control or invisible characters ({', '.join(hidden)}); remove them")
    if not any(unicodedata.category(c)[0] in "LNPS" and c not in _BLANK_LETTERS for c in name):
        raise ValueError("must not be blank (only spaces or invisible characters); give it a name")
    return name


MAX_JSON_DEPTH = 64
"""How deep a JSON value a spec holds (`schema_json`) may nest: the API's JSON encoder stops at 254 levels, so a
deeper one was saved and then answered 500 on every read of the list."""


def finite_json(value: Any) -> Any:
    """A JSON value the API can store and send back: no NaN or infinity anywhere inside, no NUL in text, nested at
    most `MAX_JSON_DEPTH` levels."""
    return _finite_json(value, 0)


def _finite_json(value: Any, depth: int) -> Any:
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nests more than {MAX_JSON_DEPTH} levels deep; flatten it")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite (no NaN or Infinity)")
    if isinstance(value, str):
        _no_nul(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_nul(str(key))
            _finite_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _finite_json(item, depth + 1)
    return value


Name = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_no_nul)]
"""A column, key or short label."""
Text = Annotated[str, Field(max_length=4096), AfterValidator(_no_nul)]
"""A path, pattern, URL or secret."""
LongText = Annotated[str, Field(max_length=65_536), AfterValidator(_no_nul)]
"""A document pasted whole (a service-account JSON)."""
Identifier = Annotated[str, Field(json_schema_extra={"pattern": IDENT_PATTERN})]


def _not_bool(value: Any) -> Any:
    """`true` is not a number: pydantic takes a boolean as 1 for a number field (`max_files_per_batch: true` made
    batches of one file)."""
    if isinstance(value, bool):
        raise ValueError(f"give a number, not {str(value).lower()}")
    return value


Int = Annotated[int, BeforeValidator(_not_bool)]
"""An integer field: refuses true and false."""
OptionalInt = Annotated[int | None, BeforeValidator(_not_bool)]
"""An integer field that may be null (the validator outside the union keeps its bounds in the JSON schema)."""
Float = Annotated[float, BeforeValidator(_not_bool)]
MAX_FILE_AGE_SECONDS = 7 * 24 * 3600


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


CredentialType = Literal[
    "ambient",
    "access_key",
    "connection_string",
    "account_key",
    "sas",
    "service_account",
    "anonymous",
    "password",
    "private_key",
]
_REQUIRED_CREDENTIAL_FIELDS: dict[str, tuple[str, ...]] = {
    "access_key": ("access_key_id", "secret_access_key"),
    "connection_string": ("connection_string",),
    "account_key": ("account_key",),
    "sas": ("sas_token",),
    "service_account": ("service_account_json",),
    "password": ("username", "password"),
    "private_key": ("username", "private_key"),
}
"""The fields each credential type cannot work without (S3 keys, Azure, GCS, SFTP)."""
CREDENTIAL_TYPES_BY_SOURCE: dict[str, tuple[str, ...]] = {
    "s3": ("ambient", "access_key"),
    "azure_blob": ("connection_string", "account_key", "sas", "ambient"),
    "gcs": ("service_account", "ambient", "anonymous"),
    "sftp": ("password", "private_key"),
    "local": ("ambient",),
}
"""The credential types each kind of source can use (the storage backends refuse any other when opened)."""


class Credentials(_Model):
    type: CredentialType = "ambient"
    access_key_id: Text | None = None
    secret_access_key: Text | None = None
    session_token: Text | None = None
    connection_string: Text | None = None
    account_key: Text | None = None
    sas_token: Text | None = None
    service_account_json: LongText | None = None
    username: Text | None = None
    password: Text | None = Field(default=None, description="SFTP password, or the passphrase of the private key.")
    private_key: LongText | None = Field(default=None, description="SFTP: an OpenSSH or PEM private key (text).")

    @model_validator(mode="after")
    def _keys_present(self) -> Credentials:
        missing = [name for name in _REQUIRED_CREDENTIAL_FIELDS.get(self.type, ()) if not getattr(self, name)]
        if missing:
            raise ValueError(f"{self.type} credentials need {' and '.join(missing)}")
        return self

    @field_validator(*SECRET_FIELDS)
    @classmethod
    def _plain(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A secret given in the stored form would be kept as is and fail to decrypt at every use."""
        if value and is_input(info) and value.startswith(ENCRYPTED_PREFIX):
            raise ValueError(
                f"a secret may not start with '{ENCRYPTED_PREFIX}' (the form secrets are stored in); "
                "enter the secret itself"
            )
        return value

    def masked(self) -> dict[str, Any]:
        """The credentials as shown back to users: secrets replaced by a marker."""
        data = self.model_dump(exclude_none=True)
        for key in SECRET_FIELDS:
            if key in data:
                data[key] = SECRET_MASK
        return data


class SourceConfig(_Model):
    type: SourceType
    path: Annotated[
        Text, Field(min_length=1, json_schema_extra={"pattern": "^(/|s3://|abfss://|https://|gs://|sftp://)"})
    ]
    file_pattern: Text | None = None
    region: Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9_.-]*$")] | None = None
    endpoint_url: Text | None = None
    credentials: Credentials = Field(default_factory=Credentials)
    host_key_fingerprint: Annotated[str, Field(max_length=100, pattern=r"^SHA256:[A-Za-z0-9+/]{43}=?$")] | None = Field(
        default=None,
        description="SFTP: the server's host key fingerprint (SHA256:..., as ssh-keygen -lf shows it), shown by "
        "Test Connection; a server presenting another key is refused.",
    )
    reload_changed_files: bool = Field(
        default=False,
        description="A file changed after it was loaded is loaded again: an append-only growth of a JSON-lines or "
        "CSV file adds only its new records, any other change replaces the file's rows (embedded engine only).",
    )
    incremental_listing: bool = Field(
        default=False,
        description="List only the files whose path sorts after those already listed (S3 StartAfter, GCS start "
        "offset, Azure startFrom; folders skipped on local and SFTP), as Auto Loader's incremental listing: for "
        "producers that name files in time order (dates or sequence numbers in the path). A file that arrives "
        "later with a path sorting earlier is found by the next full listing (full_listing_interval_hours).",
    )
    full_listing_interval_hours: Int = Field(
        default=24,
        ge=1,
        le=24 * 366,
        description="With incremental_listing: how often a run lists every file anyway, to catch files that "
        "arrived out of order. A run after a failed one, after Reprocess or a schema decision also lists fully.",
    )
    min_file_age_seconds: Int = Field(
        default=0,
        ge=0,
        le=MAX_FILE_AGE_SECONDS,
        description="Files modified more recently than this wait for a later run, so a file still being written "
        "is not loaded half-way (e.g. 60 for local and SFTP drops, where writers append in place).",
    )
    partition_columns: list[Name] | None = Field(
        default=None,
        max_length=100,
        description="Hive-style folders (year=2024/month=01/) read as columns: null infers every such folder "
        "(Auto Loader's default), [] turns it off, a list keeps only those columns.",
    )

    @field_validator("file_pattern")
    @classmethod
    def _supported_glob(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Hadoop glob syntax (core/storage/base.py), checked when a spec is saved; a stored one still loads."""
        if value is not None and is_input(info):
            from core.storage.base import check_glob

            check_glob(value)  # GlobError is a ValueError naming the pattern and the fix
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value and not _URL.match(value):
            raise ValueError("use an http:// or https:// URL, e.g. https://s3.eu-west-1.amazonaws.com")
        return value

    @model_validator(mode="after")
    def _path_matches_type(self) -> SourceConfig:
        if self.type not in SUPPORTED_SOURCES:
            raise ValueError(
                f"source type '{self.type}' is not supported yet; use one of {', '.join(SUPPORTED_SOURCES)}"
            )
        if self.type == "local" and not self.path.startswith("/"):
            raise ValueError("a local path must be absolute, e.g. /data/landing/orders")
        if self.type == "s3" and not self.path.startswith("s3://"):
            raise ValueError("an S3 path must look like s3://bucket/prefix/")
        if self.type == "azure_blob" and not self.path.startswith(("abfss://", "https://")):
            raise ValueError(
                "an Azure path must look like abfss://container@account.dfs.core.windows.net/prefix/ "
                "or https://account.blob.core.windows.net/container/prefix/"
            )
        if self.type == "gcs" and not self.path.startswith("gs://"):
            raise ValueError("a GCS path must look like gs://bucket/prefix/")
        if self.type == "sftp" and not self.path.startswith("sftp://"):
            raise ValueError("an SFTP path must look like sftp://host:22/folder")
        if self.host_key_fingerprint and self.type != "sftp":
            raise ValueError("host_key_fingerprint applies to SFTP sources only; remove it")
        return self

    @model_validator(mode="after")
    def _credentials_fit_type(self, info: ValidationInfo) -> SourceConfig:
        """Checked when saved, not only when the source is first opened: an S3 source saved with an SFTP password
        stored a secret nothing would use and failed at its first run. A stored spec still loads (the backend says)."""
        usable = CREDENTIAL_TYPES_BY_SOURCE.get(self.type, ())
        if self.credentials.type in usable or not is_input(info):
            return self
        if usable == ("ambient",):
            raise ValueError(f"credentials: {self.type} sources take no credentials; remove them")
        raise ValueError(
            f"credentials: {self.type} sources cannot use '{self.credentials.type}' credentials; "
            f"use {' or '.join(repr(t) for t in usable)}"
        )


class FormatOptions(_Model):
    multiline: bool = False
    header: bool = True
    delimiter: Annotated[str, Field(max_length=2)] = ","
    quote: Annotated[str, Field(max_length=2)] = '"'
    escape: Annotated[str, Field(max_length=1)] | None = None
    row_tag: Name | None = Field(
        default=None,
        description="XML (required): the element that holds one record, e.g. item for <item>...</item> (Spark's "
        "rowTag).",
    )
    compression: Literal["auto", "none", "gzip", "bz2", "zstd", "lz4", "snappy"] = Field(
        default="auto",
        description="JSON, CSV, text, XML: auto detects gzip, bzip2, zstd, LZ4 frames and Snappy frames from the "
        "file's first bytes; Parquet, ORC and Avro compress inside the file.",
    )
    wholetext: bool = Field(
        default=False, description="Text: the whole file is one row (Spark's wholetext); else one row per line."
    )
    comment: Annotated[str, Field(max_length=1)] | None = Field(
        default=None, description="CSV: lines starting with this character are skipped (Spark's comment)."
    )
    null_value: Annotated[str, Field(max_length=64), AfterValidator(_no_nul)] = Field(
        default="",
        description="CSV: the text that means NULL, when inferring and when reading (Spark's nullValue). "
        "An empty field is always NULL.",
    )
    nan_value: Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_no_nul)] = Field(
        default="NaN", description="CSV: the text meaning not-a-number in a floating-point column (Spark nanValue)."
    )
    date_format: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None,
        description="CSV/JSON: the pattern of date text, Spark style (yyyy-MM-dd, dd/MM/yyyy); default ISO 8601.",
    )
    timestamp_format: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None,
        description="CSV/JSON: the pattern of timestamp text, Spark style (yyyy-MM-dd HH:mm:ss); default ISO 8601.",
    )
    encoding: Annotated[str, Field(min_length=1, max_length=32)] = Field(
        default="utf-8", description="CSV/JSON text encoding: utf-8, latin-1, windows-1252, utf-16 (with BOM)..."
    )
    mode: Literal["permissive", "dropmalformed", "failfast"] = Field(
        default="permissive",
        description="Malformed records: permissive keeps them in _rescued_data, dropmalformed drops and counts "
        "them, failfast quarantines the file.",
    )
    allow_single_quotes: bool = Field(default=True, description="JSON: accept 'single-quoted' names and strings.")
    primitives_as_string: bool = Field(default=False, description="JSON: read numbers and booleans as text.")

    @field_validator("delimiter", "quote")
    @classmethod
    def _one_char(cls, value: str) -> str:
        if value == "\\t":
            value = "\t"
        if len(value) != 1:
            raise ValueError("must be a single character")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        import codecs

        try:
            info = codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown text encoding {value!r}; use e.g. utf-8, latin-1, utf-16") from None
        if not getattr(info, "_is_text_encoding", True):
            raise ValueError(f"'{value}' is not a text encoding; use e.g. utf-8, latin-1, windows-1252, utf-16")
        return value

    @model_validator(mode="after")
    def _workable_characters(self, info: ValidationInfo) -> FormatOptions:
        """Option combinations no reader can work with, refused when the spec is saved (a stored one still loads)."""
        if self.escape is not None and self.escape == self.quote:
            # Spark's escape='"' means doubled quotes, which are always read as one quote.
            self.escape = None
        if not is_input(info):
            return self
        named = {"delimiter": self.delimiter, "quote": self.quote, "escape": self.escape, "comment": self.comment}
        for name, char in named.items():
            if char is None or char == "":
                continue
            if len(char.encode("utf-8")) != 1:
                raise ValueError(
                    f"{name} must be a single ASCII character (the CSV parser works on bytes), not {char!r}"
                )
            if char in "\r\n":
                raise ValueError(f"{name} cannot be a line break")
        seen: dict[str, str] = {}
        for name, char in named.items():
            if not char:
                continue
            if char in seen:
                raise ValueError(f"{name} and {seen[char]} cannot be the same character ({char!r})")
            seen[char] = name
        return self

    @field_validator("encoding")
    @classmethod
    def _streamable_encoding(cls, value: str) -> str:
        import codecs

        try:
            codecs.getincrementaldecoder(value)
        except (LookupError, TypeError):
            raise ValueError(
                f"the text encoding {value!r} cannot be read block by block; use e.g. utf-8, utf-16"
            ) from None
        return value

    @field_validator("date_format", "timestamp_format")
    @classmethod
    def _known_pattern(cls, value: str | None) -> str | None:
        if value is not None:
            from core.formats.patterns import strptime_format

            try:
                strptime_format(value)
            except ConfigError as exc:
                raise ValueError(f"{exc.message}. {exc.action}") from None
        return value


class SchemaConfig(_Model):
    inference: Literal["auto", "manual"] = "auto"
    infer_types: bool = True
    schema_json: list[Annotated[dict[str, Any], AfterValidator(finite_json)]] | None = Field(  # type: ignore[assignment]
        default=None,
        max_length=MAX_COLUMNS,
        description='Manual schema: [{"name": "id", "type": "bigint", "nullable": true}, ...]',
    )
    hints: dict[Name, Text] = Field(
        default_factory=dict, max_length=MAX_COLUMNS, description="Per-column type hints: {column: type}"
    )
    on_schema_change: SchemaPolicy = "pause"
    sample_files: Int = Field(default=10, ge=1, le=1000)
    ignored_columns: list[Name] = Field(
        default_factory=list,
        max_length=MAX_COLUMNS,
        description="Columns dropped from loads (a schema-review decision; reversible).",
    )

    @model_validator(mode="after")
    def _manual_has_schema(self) -> SchemaConfig:
        if self.inference == "manual" and not self.schema_json:
            raise ValueError("manual schema inference needs schema_json")
        return self

    @model_validator(mode="after")
    def _known_types(self, info: ValidationInfo) -> SchemaConfig:
        """The checks Test & Preview makes (the same functions the engines use), made when the spec is saved."""
        if not is_input(info):
            return self
        from core.formats.types import parse_type, schema_from_json

        try:
            if self.schema_json:
                schema_from_json(self.schema_json)
            for column, type_text in self.hints.items():
                try:
                    parse_type(type_text)
                except ConfigError as exc:
                    raise ConfigError(
                        f"{exc.message} (hint for column '{column}')", exc.action, field="format.schema.hints"
                    ) from None
        except ConfigError as exc:
            field = exc.field if exc.field != "format.schema" else "format.schema.schema_json"
            raise ValueError(f"{field}: {exc.message}. {exc.action}") from None
        return self


class FormatConfig(_Model):
    type: FormatType
    options: FormatOptions = Field(default_factory=FormatOptions)
    schema_: SchemaConfig = Field(default_factory=SchemaConfig, alias="schema")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _xml_has_row_tag(self, info: ValidationInfo) -> FormatConfig:
        """XML cannot be read without the element of one record (a stored spec still loads; its runs say so)."""
        if self.type == "xml" and not self.options.row_tag and is_input(info):
            raise ValueError(
                "format.options.row_tag: XML needs a row tag, the element that holds one record (e.g. item for "
                "<items><item>...</item></items>); set format.options.row_tag"
            )
        return self


class DestinationConfig(_Model):
    catalog: Identifier = "main"
    database: Identifier = "default"
    table: Identifier
    write_mode: WriteMode = "append"
    merge_keys: list[Name] = Field(default_factory=list, max_length=100)
    merge_order_by: Name | None = None
    partition_columns: list[Name] = Field(default_factory=list, max_length=100)
    z_order_columns: list[Name] = Field(default_factory=list, max_length=100)
    table_properties: dict[Name, Text] = Field(default_factory=dict, max_length=100)
    lineage_columns: bool = True
    location: Text | None = Field(
        default=None,
        description=(
            "Where a Spark cluster finds the table's files, set when the ingestion moves from the embedded engine to "
            "a cluster (POST /ingestions/{id}/engine): the cluster registers the embedded engine's Delta table there "
            "and continues it. Not set by hand; empty otherwise."
        ),
    )

    @field_validator("catalog", "database", "table")
    @classmethod
    def _identifier(cls, value: str, info: ValidationInfo) -> str:
        if value.lower() == "_delta_log" and is_input(info):
            # the warehouse keeps a table at <catalog>/<database>/<table>: this one is its parent folder's Delta log
            raise ValueError("'_delta_log' is the folder of a Delta table's log; choose another name")
        if _IDENT.match(value):
            return value
        if len(value) > 128:
            raise ValueError(f"at most 128 characters ({len(value)} given)")
        if value.count(".") in (1, 2) and all(_IDENT.match(part) for part in value.split(".")):
            raise ValueError("one name without dots: give the catalog and the database in their own fields")
        raise ValueError("use letters, digits and underscores, starting with a letter or underscore")

    @model_validator(mode="after")
    def _merge_needs_keys(self) -> DestinationConfig:
        if self.write_mode == "merge" and not self.merge_keys:
            raise ValueError("merge write mode needs at least one merge key column")
        return self

    @property
    def full_name(self) -> str:
        return f"{self.catalog}.{self.database}.{self.table}"


class BackfillConfig(_Model):
    mode: Literal["new_only", "all", "since"] = "all"
    since: datetime | None = None


class ScheduleConfig(_Model):
    mode: ScheduleMode = "manual"
    frequency: Literal["hourly", "daily", "weekly", "custom"] | None = None
    time: Annotated[str, Field(max_length=16)] | None = None
    weekday: Annotated[str, Field(max_length=16)] | None = None
    minute: OptionalInt = Field(default=None, ge=0, le=59)
    cron_expression: Annotated[str, Field(max_length=256)] | None = None
    timezone: Annotated[str, Field(min_length=1, max_length=64)] = "UTC"
    interval_seconds: Int = Field(
        default=30,
        le=MAX_INTERVAL_SECONDS,
        description="Continuous mode: seconds between checks, 5 s to 7 days",
        json_schema_extra={"minimum": MIN_INTERVAL_SECONDS},
    )
    backfill: BackfillConfig = Field(default_factory=BackfillConfig)

    @field_validator("interval_seconds")
    @classmethod
    def _interval_at_least_minimum(cls, value: int, info: ValidationInfo) -> int:
        """Refused, not raised to the minimum: a user who typed 2 must see that 2 is not what will happen. A stored
        interval under the minimum (older rows) still loads, if it is a positive number of seconds at all."""
        if value < MIN_INTERVAL_SECONDS and (is_input(info) or value < 1):
            raise ValueError(
                f"{value} s is shorter than the minimum of {MIN_INTERVAL_SECONDS} s between checks; "
                f"use {MIN_INTERVAL_SECONDS} to {MAX_INTERVAL_SECONDS} seconds"
            )
        return value

    @model_validator(mode="after")
    def _valid_trigger(self, info: ValidationInfo) -> ScheduleConfig:
        try:
            validate_schedule(self)
            if is_input(info):
                check_zone(self)
                check_input(self)
                check_fires(self)
        except ConfigError as exc:
            raise ValueError(f"{exc.field}: {exc.message} {exc.action}") from None
        return self


class QualityConfig(_Model):
    row_count_min: OptionalInt = Field(default=None, ge=0, le=MAX_ID)
    max_bad_record_ratio: Float = Field(default=0.1, ge=0, le=1)
    duration_sla_minutes: OptionalInt = Field(default=None, ge=1, le=366 * 24 * 60)
    no_files_alert_days: OptionalInt = Field(default=None, ge=1, le=3660)
    alert_recipients: list[
        Annotated[str, Field(max_length=254, json_schema_extra={"format": "email", "pattern": _EMAIL_PATTERN})]
    ] = Field(default_factory=list, max_length=50)
    webhook_url: Annotated[Text, Field(json_schema_extra={"pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"})] | None = Field(
        default=None,
        description="Alerts are POSTed here as JSON (Slack-compatible `text`). Stored encrypted; answers show only its "
        "scheme and host (https://hooks.slack.com/********), and that value sent back keeps the stored URL.",
    )

    @field_validator("alert_recipients")
    @classmethod
    def _emails(cls, value: list[str], info: ValidationInfo) -> list[str]:
        for address in value if is_input(info) else ():
            if not _EMAIL.match(address):
                raise ValueError(f"'{address}' is not an e-mail address; use name@example.com")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value and is_input(info) and not _URL.match(value):
            raise ValueError("use an http:// or https:// URL, e.g. https://hooks.slack.com/services/...")
        if value and is_input(info) and value.rpartition("/")[2].startswith(ENCRYPTED_PREFIX):
            raise ValueError(f"a webhook URL may not end in '{ENCRYPTED_PREFIX}…' (the form it is stored in)")
        return value


class LoadLimits(_Model):
    """How a run is cut into batches; one Delta commit per batch."""

    max_files_per_batch: Int = Field(default=10_000, ge=1, le=1_000_000)
    max_bytes_per_batch: Int = Field(default=256 * 1024 * 1024, ge=1024, le=2**40)


class IngestionSpec(_Model):
    """What to load from where into which table, and when."""

    name: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_nul), AfterValidator(_ingestion_name)]
    cluster_id: OptionalInt = Field(default=None, ge=1, le=MAX_ID)
    source: SourceConfig
    format: FormatConfig
    destination: DestinationConfig
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    limits: LoadLimits = Field(default_factory=LoadLimits)

    @model_validator(mode="after")
    def _format_runs_on_engine(self) -> IngestionSpec:
        """Every format runs on both engines today; the check stays for a format only a cluster reads."""
        if self.cluster_id is None and self.format.type not in EMBEDDED_FORMATS:
            raise ValueError(
                f"format.type: '{self.format.type}' needs a Spark cluster; the embedded engine reads "
                f"{', '.join(EMBEDDED_FORMATS)}. Pick a cluster (cluster_id) or another format."
            )
        return self

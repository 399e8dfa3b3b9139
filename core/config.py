"""The ingestion configuration (PRODUCT.md §14). Field names are the API contract."""

from __future__ import annotations

import re
import warnings
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.errors import ConfigError
from core.schedule import validate as validate_schedule

SourceType = Literal["s3", "azure_blob", "gcs", "sftp", "local"]
FormatType = Literal["json", "csv", "parquet", "avro", "orc", "xml", "text"]
SchemaPolicy = Literal["pause", "auto_merge", "rescue", "fail"]
WriteMode = Literal["create", "append", "overwrite", "merge"]

SUPPORTED_SOURCES: tuple[str, ...] = ("local", "s3")
EMBEDDED_FORMATS: tuple[str, ...] = ("json", "csv", "parquet")
SECRET_FIELDS = ("secret_access_key", "session_token", "connection_string", "password", "service_account_json")

# `schema_json` is the API's field name; it shadows pydantic's deprecated BaseModel.schema_json on purpose.
warnings.filterwarnings("ignore", message='Field name "schema_json"', category=UserWarning)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Credentials(_Model):
    type: Literal["ambient", "access_key", "connection_string", "service_account", "password"] = "ambient"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    connection_string: str | None = None
    service_account_json: str | None = None
    username: str | None = None
    password: str | None = None

    @model_validator(mode="after")
    def _keys_present(self) -> Credentials:
        if self.type == "access_key" and not (self.access_key_id and self.secret_access_key):
            raise ValueError("access_key credentials need access_key_id and secret_access_key")
        return self

    def masked(self) -> dict[str, Any]:
        """The credentials as shown back to users: secrets replaced by a marker."""
        data = self.model_dump(exclude_none=True)
        for key in SECRET_FIELDS:
            if key in data:
                data[key] = "********"
        return data


class SourceConfig(_Model):
    type: SourceType
    path: str
    file_pattern: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    credentials: Credentials = Field(default_factory=Credentials)
    reload_changed_files: bool = False

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
        return self


class FormatOptions(_Model):
    multiline: bool = False
    header: bool = True
    delimiter: str = ","
    quote: str = '"'
    escape: str | None = None
    row_tag: str | None = None
    compression: Literal["auto", "none", "gzip", "bz2", "zstd"] = "auto"

    @field_validator("delimiter", "quote")
    @classmethod
    def _one_char(cls, value: str) -> str:
        if value == "\\t":
            value = "\t"
        if len(value) != 1:
            raise ValueError("must be a single character")
        return value


class SchemaConfig(_Model):
    inference: Literal["auto", "manual"] = "auto"
    infer_types: bool = True
    schema_json: list[dict[str, Any]] | None = Field(  # type: ignore[assignment]
        default=None, description='Manual schema: [{"name": "id", "type": "bigint", "nullable": true}, ...]'
    )
    hints: dict[str, str] = Field(default_factory=dict, description="Per-column type hints: {column: type}")
    on_schema_change: SchemaPolicy = "pause"
    sample_files: int = Field(default=10, ge=1, le=1000)
    ignored_columns: list[str] = Field(
        default_factory=list, description="Columns dropped from loads (a schema-review decision; reversible)."
    )

    @model_validator(mode="after")
    def _manual_has_schema(self) -> SchemaConfig:
        if self.inference == "manual" and not self.schema_json:
            raise ValueError("manual schema inference needs schema_json")
        return self


class FormatConfig(_Model):
    type: FormatType
    options: FormatOptions = Field(default_factory=FormatOptions)
    schema_: SchemaConfig = Field(default_factory=SchemaConfig, alias="schema")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DestinationConfig(_Model):
    catalog: str = "main"
    database: str = "default"
    table: str
    write_mode: WriteMode = "append"
    merge_keys: list[str] = Field(default_factory=list)
    merge_order_by: str | None = None
    partition_columns: list[str] = Field(default_factory=list)
    z_order_columns: list[str] = Field(default_factory=list)
    table_properties: dict[str, str] = Field(default_factory=dict)
    lineage_columns: bool = True

    @field_validator("catalog", "database", "table")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENT.match(value):
            raise ValueError("use letters, digits and underscores, starting with a letter or underscore")
        return value

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
    mode: Literal["scheduled", "continuous", "manual"] = "manual"
    frequency: Literal["hourly", "daily", "weekly", "custom"] | None = None
    time: str | None = None
    weekday: str | None = None
    minute: int | None = Field(default=None, ge=0, le=59)
    cron_expression: str | None = None
    timezone: str = "UTC"
    interval_seconds: int = Field(default=30, ge=5)
    backfill: BackfillConfig = Field(default_factory=BackfillConfig)

    @model_validator(mode="after")
    def _valid_trigger(self) -> ScheduleConfig:
        try:
            validate_schedule(self)
        except ConfigError as exc:
            raise ValueError(f"{exc.field}: {exc.message} {exc.action}") from None
        return self


class QualityConfig(_Model):
    row_count_min: int | None = Field(default=None, ge=0)
    max_bad_record_ratio: float = Field(default=0.1, ge=0, le=1)
    duration_sla_minutes: int | None = Field(default=None, ge=1)
    no_files_alert_days: int | None = Field(default=None, ge=1)
    alert_recipients: list[str] = Field(default_factory=list)
    webhook_url: str | None = None


class LoadLimits(_Model):
    """How a run is cut into batches; one Delta commit per batch."""

    max_files_per_batch: int = Field(default=10_000, ge=1)
    max_bytes_per_batch: int = Field(default=256 * 1024 * 1024, ge=1024)


class IngestionSpec(_Model):
    """What to load from where into which table, and when."""

    name: str = Field(min_length=1, max_length=200)
    cluster_id: int | None = None
    source: SourceConfig
    format: FormatConfig
    destination: DestinationConfig
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    limits: LoadLimits = Field(default_factory=LoadLimits)

    @model_validator(mode="after")
    def _format_runs_on_engine(self) -> IngestionSpec:
        """The embedded engine reads JSON, CSV and Parquet; a Spark cluster also reads ORC, XML, text, Avro."""
        if self.cluster_id is None and self.format.type not in EMBEDDED_FORMATS:
            raise ValueError(
                f"format.type: '{self.format.type}' needs a Spark cluster; the embedded engine reads "
                f"{', '.join(EMBEDDED_FORMATS)}. Pick a cluster (cluster_id) or another format."
            )
        return self

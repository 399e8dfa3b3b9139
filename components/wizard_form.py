"""The wizard's form state, its mapping to the `IngestionSpec` contract, and validation per step.

Validation builds the pydantic models of core/config.py, so the console accepts exactly what the API accepts;
errors come back keyed by the contract's field path ("source.path") for the page to show next to the input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from core.config import (
    EMBEDDED_FORMATS,
    DestinationConfig,
    FormatConfig,
    IngestionSpec,
    QualityConfig,
    ScheduleConfig,
    SourceConfig,
)

STEPS = ("Source", "Format", "Destination", "Schedule")
STEP_PARTS: dict[str, tuple[str, ...]] = {
    "Source": ("name", "source"),
    "Format": ("format",),
    "Destination": ("destination",),
    "Schedule": ("schedule", "quality"),
}
DEFAULT_FIELD = {
    "name": "name",
    "source": "source.path",
    "format": "format.type",
    "destination": "destination.table",
    "schedule": "schedule.frequency",
    "quality": "quality.row_count_min",
}
"""Where an error of a whole part (a model validator) is shown."""
FORMAT_LABELS = {"json": "JSON", "csv": "CSV / TSV", "parquet": "Parquet"}
CLUSTER_FORMAT_LABELS = {"orc": "ORC", "xml": "XML", "text": "Text (one line per record)", "avro": "Avro"}
"""Formats only a Spark cluster reads (core.config.EMBEDDED_FORMATS are the embedded engine's)."""
MODEL_ERROR_FIELD = {
    "merge": "destination.merge_keys",
    "manual schema": "format.schema.schema_json",
    "access_key": "source.credentials.secret_access_key",
}
_PART_MODELS: dict[str, type[BaseModel]] = {
    "source": SourceConfig,
    "format": FormatConfig,
    "destination": DestinationConfig,
    "schedule": ScheduleConfig,
    "quality": QualityConfig,
}


@dataclass
class WizardForm:
    name: str = ""
    source_type: str = "local"
    path: str = ""
    file_pattern: str = ""
    auth: str = "ambient"
    access_key_id: str = ""
    secret_access_key: str = ""
    region: str = ""
    endpoint_url: str = ""
    format_type: str = "json"
    schema_mode: str = "auto"
    schema_json: str = ""
    infer_types: bool = True
    on_schema_change: str = "pause"
    multiline: bool = False
    header: bool = True
    delimiter: str = ","
    quote: str = '"'
    compression: str = "auto"
    row_tag: str = ""
    cluster_id: int | None = None
    """None: the embedded engine; else the registered Spark cluster the ingestion runs on."""
    catalog: str = "main"
    database: str = "default"
    table: str = ""
    write_mode: str = "append"
    merge_keys: list[str] = field(default_factory=list)
    partition_columns: list[str] = field(default_factory=list)
    z_order_columns: list[str] = field(default_factory=list)
    schedule_mode: str = "scheduled"
    frequency: str = "daily"
    minute: int = 0
    time: str = "02:00"
    weekday: str = "mon"
    cron_expression: str = "0 2 * * *"
    timezone: str = "UTC"
    interval_seconds: int = 60
    backfill_mode: str = "all"
    backfill_since: str = ""
    row_count_min: int | None = None
    alert_recipients: str = ""
    keep_secret: bool = False
    """Editing: the stored secret key is kept when the field is left empty."""

    @property
    def full_table_name(self) -> str:
        return f"{self.catalog or 'main'}.{self.database or 'default'}.{self.table or '<table>'}"

    def source_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.source_type, "path": self.path.strip()}
        if self.file_pattern.strip():
            body["file_pattern"] = self.file_pattern.strip()
        if self.source_type == "s3":
            body["region"] = self.region.strip() or None
            body["endpoint_url"] = self.endpoint_url.strip() or None
            if self.auth == "access_key":
                body["credentials"] = {
                    "type": "access_key",
                    "access_key_id": self.access_key_id.strip(),
                    "secret_access_key": self.secret_access_key,
                }
        return body

    def format_body(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "inference": self.schema_mode,
            "infer_types": self.infer_types,
            "on_schema_change": self.on_schema_change,
        }
        if self.schema_mode == "manual":
            schema["schema_json"] = _json_or_text(self.schema_json)
        options: dict[str, Any] = {"multiline": self.multiline, "compression": self.compression}
        if self.format_type == "csv":
            options |= {"header": self.header, "delimiter": self.delimiter, "quote": self.quote}
        if self.format_type == "xml" and self.row_tag.strip():
            options["row_tag"] = self.row_tag.strip()
        return {"type": self.format_type, "options": options, "schema": schema}

    def destination_body(self) -> dict[str, Any]:
        return {
            "catalog": self.catalog.strip(),
            "database": self.database.strip(),
            "table": self.table.strip(),
            "write_mode": self.write_mode,
            "merge_keys": list(self.merge_keys) if self.write_mode == "merge" else [],
            "partition_columns": list(self.partition_columns),
            "z_order_columns": list(self.z_order_columns),
        }

    def schedule_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"mode": self.schedule_mode, "timezone": self.timezone or "UTC"}
        if self.schedule_mode == "continuous":
            body["interval_seconds"] = int(self.interval_seconds or 0)
        if self.schedule_mode == "scheduled":
            body["frequency"] = self.frequency
            if self.frequency == "hourly":
                body["minute"] = int(self.minute or 0)
            if self.frequency in ("daily", "weekly"):
                body["time"] = self.time
            if self.frequency == "weekly":
                body["weekday"] = self.weekday
            if self.frequency == "custom":
                body["cron_expression"] = self.cron_expression
        backfill: dict[str, Any] = {"mode": self.backfill_mode}
        if self.backfill_mode == "since":
            backfill["since"] = self.backfill_since or None
        body["backfill"] = backfill
        return body

    def quality_body(self) -> dict[str, Any]:
        recipients = [r.strip() for r in self.alert_recipients.replace(";", ",").split(",") if r.strip()]
        body: dict[str, Any] = {"alert_recipients": recipients}
        if self.row_count_min not in (None, ""):
            body["row_count_min"] = int(self.row_count_min)
        return body

    def body(self) -> dict[str, Any]:
        return {
            "name": self.name.strip(),
            "cluster_id": self.cluster_id,
            "source": self.source_body(),
            "format": self.format_body(),
            "destination": self.destination_body(),
            "schedule": self.schedule_body(),
            "quality": self.quality_body(),
        }


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        return text


def _error_field(part: str, loc: tuple[Any, ...], message: str) -> tuple[str, str]:
    message = message.removeprefix("Value error, ")
    head, _, rest = message.partition(": ")
    if "." in head and " " not in head and rest:
        return head, rest
    if loc:
        path = ".".join(str(p) for p in (part, *loc) if p not in ("schema_",))
        return path, message
    for needle, where in MODEL_ERROR_FIELD.items():
        if needle in message:
            return where, message
    return DEFAULT_FIELD[part], message


def errors_of(exc: ValidationError, part: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for error in exc.errors():
        path, message = _error_field(part, tuple(error.get("loc", ())), str(error.get("msg", "invalid value")))
        path = {
            "format.schema_json": "format.schema.schema_json",
            "source.credentials": "source.credentials.secret_access_key",
        }.get(path, path)
        found.setdefault(path, message)
    return found


def validate_parts(form: WizardForm, parts: tuple[str, ...]) -> dict[str, str]:
    """Field path → message for every problem in the given parts of the form (empty: valid)."""
    body = form.body()
    problems: dict[str, str] = {}
    for part in parts:
        if part == "name":
            if not body["name"]:
                problems["name"] = "Give the ingestion a name."
            continue
        if (
            part == "format"
            and form.schema_mode == "manual"
            and isinstance(body["format"]["schema"]["schema_json"], str)
        ):
            problems["format.schema.schema_json"] = 'Not valid JSON; use [{"name": "id", "type": "bigint"}, ...].'
            continue
        if part == "source" and not form.path.strip():
            problems["source.path"] = "Enter the folder or bucket path to load files from."
            continue
        if part == "source" and form.keep_secret and form.auth == "access_key" and not form.secret_access_key:
            body["source"]["credentials"]["secret_access_key"] = "unchanged"
        try:
            _PART_MODELS[part].model_validate(body[part])
        except ValidationError as exc:
            problems |= errors_of(exc, part)
        if part == "format" and "format.type" not in problems:
            problems |= engine_problems(form)
    return problems


def engine_problems(form: WizardForm) -> dict[str, str]:
    """The spec's own check that the chosen engine reads the format (the embedded engine: json, csv, parquet)."""
    if form.cluster_id is not None or form.format_type in EMBEDDED_FORMATS:
        return {}
    body = {
        "name": "engine-check",
        "cluster_id": form.cluster_id,
        "source": {"type": "local", "path": "/"},
        "format": {"type": form.format_type},
        "destination": {"table": "engine_check"},
    }
    try:
        IngestionSpec.model_validate(body)
    except ValidationError as exc:
        return errors_of(exc, "format")
    return {}


def validate_step(form: WizardForm, step: str) -> dict[str, str]:
    return validate_parts(form, STEP_PARTS[step])


def build_spec(form: WizardForm, stored_secret: str | None = None) -> IngestionSpec:
    """The spec of the whole form; call after `validate_parts` found nothing."""
    body = form.body()
    credentials = body["source"].get("credentials")
    if credentials and not credentials.get("secret_access_key") and stored_secret:
        credentials["secret_access_key"] = stored_secret
    return IngestionSpec.model_validate(body)


def probe_spec(form: WizardForm) -> IngestionSpec:
    """A spec for testing the source (and the format) before the later steps are filled in."""
    body = form.body()
    body["name"] = body["name"] or "connection-test"
    body["destination"] = {"table": "connection_test"}
    body["schedule"] = {}
    body["quality"] = {}
    try:
        FormatConfig.model_validate(body["format"])
    except ValidationError:
        body["format"] = {"type": form.format_type}
    return IngestionSpec.model_validate(body)


def form_from_spec(spec: IngestionSpec) -> WizardForm:
    source, fmt, dest, schedule = spec.source, spec.format, spec.destination, spec.schedule
    return WizardForm(
        name=spec.name,
        source_type=source.type,
        path=source.path,
        file_pattern=source.file_pattern or "",
        auth="access_key" if source.credentials.type == "access_key" else "ambient",
        access_key_id=source.credentials.access_key_id or "",
        region=source.region or "",
        endpoint_url=source.endpoint_url or "",
        format_type=fmt.type,
        schema_mode=fmt.schema_.inference,
        schema_json=json.dumps(fmt.schema_.schema_json, indent=2) if fmt.schema_.schema_json else "",
        infer_types=fmt.schema_.infer_types,
        on_schema_change=fmt.schema_.on_schema_change,
        multiline=fmt.options.multiline,
        header=fmt.options.header,
        delimiter=fmt.options.delimiter,
        quote=fmt.options.quote,
        compression=fmt.options.compression,
        row_tag=fmt.options.row_tag or "",
        cluster_id=spec.cluster_id,
        catalog=dest.catalog,
        database=dest.database,
        table=dest.table,
        write_mode=dest.write_mode,
        merge_keys=list(dest.merge_keys),
        partition_columns=list(dest.partition_columns),
        z_order_columns=list(dest.z_order_columns),
        schedule_mode=schedule.mode,
        frequency=schedule.frequency or "daily",
        minute=schedule.minute or 0,
        time=schedule.time or "02:00",
        weekday=schedule.weekday or "mon",
        cron_expression=schedule.cron_expression or "0 2 * * *",
        timezone=schedule.timezone,
        interval_seconds=schedule.interval_seconds,
        backfill_mode=schedule.backfill.mode,
        backfill_since=schedule.backfill.since.date().isoformat() if schedule.backfill.since else "",
        row_count_min=spec.quality.row_count_min,
        alert_recipients=", ".join(spec.quality.alert_recipients),
        keep_secret=source.credentials.type == "access_key",
    )

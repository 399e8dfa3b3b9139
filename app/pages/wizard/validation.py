"""Validation of the draft per step.

It builds the pydantic models of core/config.py, so the console accepts exactly what the API accepts; errors come
back keyed by the contract's field path ("source.path") for the page to show next to the input.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

from app.pages.wizard.draft import SpecDraft
from components.console_words import console_field_message
from core.config import (
    EMBEDDED_FORMATS,
    DestinationConfig,
    FormatConfig,
    FormatOptions,
    IngestionSpec,
    LoadLimits,
    QualityConfig,
    ScheduleConfig,
    SchemaConfig,
    SourceConfig,
)

STEPS = ("Source", "Format", "Destination", "Schedule")
STEP_PARTS: dict[str, tuple[str, ...]] = {
    "Source": ("name", "source"),
    "Format": ("format",),
    "Destination": ("destination",),
    "Schedule": ("schedule", "quality", "limits"),
}
DEFAULT_FIELD = {
    "name": "name",
    "source": "source.path",
    "format": "format.type",
    "destination": "destination.table",
    "schedule": "schedule.frequency",
    "quality": "quality.row_count_min",
    "limits": "limits.max_files_per_batch",
}
"""Where an error of a whole part (a model validator) is shown."""
MODEL_ERROR_FIELD = {
    "merge": "destination.merge_keys",
    "manual schema": "format.schema.schema_json",
    "access_key": "source.credentials.secret_access_key",
}
RENAMED_FIELD = {
    "format.schema_json": "format.schema.schema_json",
    "source.credentials": "source.credentials.secret_access_key",
}
_CREDENTIALS_NEED = re.compile(r"credentials need (\w+)")
CHECK_BODY: dict[str, Any] = {
    "name": "check",
    "source": {"type": "local", "path": "/"},
    "format": {"type": "json"},
    "destination": {"table": "check"},
}
"""A valid spec to check one top-level field against the spec's own rules."""
HINTS = "format.schema.hints"
"""The per-column type hints ({column: type}); each row's problem is keyed `format.schema.hints.<column>`."""
_PART_MODELS: dict[str, type[BaseModel]] = {
    "source": SourceConfig,
    "format": FormatConfig,
    "destination": DestinationConfig,
    "schedule": ScheduleConfig,
    "quality": QualityConfig,
    "limits": LoadLimits,
}


def _error_field(part: str, loc: tuple[Any, ...], message: str) -> tuple[str, str]:
    message = message.removeprefix("Value error, ")
    head, _, rest = message.partition(": ")
    if "." in head and " " not in head and rest:
        return head, rest
    if loc:
        path = ".".join(str(p) for p in (part, *loc) if p not in ("schema_",))
        named = message.split(" ", 1)[0]
        if path == "format.options" and named in FormatOptions.model_fields:
            path = f"{path}.{named}"  # "escape and quote cannot be the same character": under the escape
        return path, message
    for needle, where in MODEL_ERROR_FIELD.items():
        if needle in message:
            return where, message
    return DEFAULT_FIELD[part], message


def errors_of(exc: ValidationError, part: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for error in exc.errors():
        path, message = _error_field(part, tuple(error.get("loc", ())), str(error.get("msg", "invalid value")))
        found.setdefault(
            _missing_credential(path, message) or RENAMED_FIELD.get(path, path), console_field_message(message)
        )
    return found


def _missing_credential(path: str, message: str) -> str | None:
    """Under the first field a credential type lacks ("sas credentials need sas_token" → the SAS token field)."""
    missing = _CREDENTIALS_NEED.search(message) if path == "source.credentials" else None
    return f"source.credentials.{missing[1]}" if missing else None


def _name_problems(name: str) -> dict[str, str]:
    if not name:
        return {"name": "Give the ingestion a name."}
    try:
        IngestionSpec.model_validate(CHECK_BODY | {"name": name})
    except ValidationError as exc:
        return {"name": str(exc.errors()[0]["msg"])}
    return {}


def _part_problems(draft: SpecDraft, part: str) -> dict[str, str]:
    if part == "name":
        return _name_problems(draft.get("name"))
    if part == "format" and isinstance(draft.get("format.schema.schema_json"), str):
        return {"format.schema.schema_json": 'Not valid JSON; use [{"name": "id", "type": "bigint"}, ...].'}
    if part == "source" and not draft.get("source.path"):
        return {"source.path": "Enter the folder or bucket path to load files from."}
    problems: dict[str, str] = {}
    if (
        part == "schedule"
        and draft.get("schedule.backfill.mode") == "since"
        and not draft.get("schedule.backfill.since")
    ):  # said beside the schedule's other problems: a missing date must not hide a bad cron typed after it
        problems["schedule.backfill.since"] = "Pick the date: files modified since then are loaded."
    try:
        _PART_MODELS[part].model_validate(draft.get(part))
    except ValidationError as exc:
        problems |= errors_of(exc, part)
    if part == "format":
        problems = _each_hint(problems, draft.get(HINTS))
    if part == "format" and "format.type" not in problems:
        problems |= engine_problems(draft)
    return problems


def hint_path(column: str) -> str:
    """Where the problem of one column's type hint is shown: under its row of the Column types editor."""
    return f"{HINTS}.{column}"


def hint_problems(hints: dict[str, Any]) -> dict[str, str]:
    """Each type hint checked alone by the spec's own validator, keyed by `hint_path(column)` (empty: all valid).

    The spec's check stops at the first bad hint; checked one by one, every bad row is named at once."""
    problems: dict[str, str] = {}
    for column, type_text in hints.items():
        try:
            SchemaConfig.model_validate({"hints": {column: type_text}})
        except ValidationError as exc:
            error = exc.errors()[0]
            message = next(iter(errors_of(exc, "format").values()))
            if "[key]" in error.get("loc", ()):
                message = f"The column name is not valid: {message}"
            problems[hint_path(column)] = message
    return problems


def _each_hint(problems: dict[str, str], hints: dict[str, Any]) -> dict[str, str]:
    """The format's problems with the hints' one (the first bad hint) replaced by one problem per bad hint."""
    hinted = {path: message for path, message in problems.items() if path.startswith(HINTS)}
    if not hinted:
        return problems
    others = {path: message for path, message in problems.items() if not path.startswith(HINTS)}
    return others | (hint_problems(hints) or hinted)


def validate_parts(draft: SpecDraft, parts: tuple[str, ...]) -> dict[str, str]:
    """Field path → message for every problem in the given parts of the draft (empty: valid)."""
    problems: dict[str, str] = {}
    for part in parts:
        problems |= _part_problems(draft, part)
    return problems


FIELD_PART = {"name": "name"}
SHOWN_WITH = {
    "schedule.backfill.mode": ("schedule.backfill.since",),
    "schedule.frequency": ("schedule.cron_expression",),
}
"""A choice that reveals a required field: its problem shows as soon as the choice is made."""


def field_problems(draft: SpecDraft, path: str) -> dict[str, str]:
    """The problems of one field (and of the fields its choice reveals), checked as the user changes it."""
    part = FIELD_PART.get(path, path.split(".", 1)[0])
    if part not in STEP_PARTS["Source"] + STEP_PARTS["Format"] + STEP_PARTS["Destination"] + STEP_PARTS["Schedule"]:
        return {}
    watched = (path, *SHOWN_WITH.get(path, ()))
    return {p: m for p, m in validate_parts(draft, (part,)).items() if p in watched}


def validate_step(draft: SpecDraft, step: str) -> dict[str, str]:
    return validate_parts(draft, STEP_PARTS[step])


def first_invalid_step(draft: SpecDraft) -> tuple[str | None, dict[str, str]]:
    for step in STEPS:
        problems = validate_step(draft, step)
        if problems:
            return step, problems
    return None, {}


def engine_problems(draft: SpecDraft) -> dict[str, str]:
    """The spec's own check that the chosen engine reads the format (the embedded engine: json, csv, parquet)."""
    cluster_id, format_type = draft.get("cluster_id"), draft.get("format.type")
    if cluster_id is not None or format_type in EMBEDDED_FORMATS:
        return {}
    try:
        IngestionSpec.model_validate(CHECK_BODY | {"cluster_id": cluster_id, "format": {"type": format_type}})
    except ValidationError as exc:
        return errors_of(exc, "format")
    return {}

"""The table of settings (app/settings.py): field, environment variable, how to write it, default, meaning."""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import NoDecode

from docs.gen.regions import cell

ENV_PREFIX = "AUTOLOADER_"
UNDESCRIBED = "(no description in app/settings.py)"
FALLBACK_DESCRIPTIONS = {
    "host": "Address `autoloader serve` listens on (`--host` overrides it); the container sets 0.0.0.0.",
    "port": "Port `autoloader serve` listens on (`--port` overrides it).",
    "heartbeat_seconds": "How often a running run (and a table maintenance) writes its heartbeat.",
    "run_workers": "Runs of different ingestions executed in parallel by one server (one at a time per ingestion).",
    "reload_ui": "Not read by the code today: `autoloader serve` always starts without auto-reload.",
    "smtp_port": "Port of the SMTP server.",
    "smtp_user": "SMTP login; unset = no login.",
    "smtp_password": "SMTP password.",
    "smtp_from": "Sender address of alert emails.",
    "smtp_starttls": "Upgrade the SMTP connection with STARTTLS.",
}
"""For fields declared without a description in app/settings.py (the field's own description wins)."""


@dataclass(frozen=True, slots=True)
class SettingDoc:
    field: str
    env: str
    written: str
    default: str
    description: str


def _written(info: FieldInfo) -> str:
    """How the variable's value is written: the type, and for lists whether comma-separated or JSON."""
    annotation = info.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return " \\| ".join(f"`{value}`" for value in typing.get_args(annotation))
    if any(isinstance(m, type) and issubclass(m, NoDecode) for m in info.metadata):
        return "comma-separated list"
    base = args[0] if typing.get_origin(annotation) in (typing.Union, types.UnionType) else annotation
    origin: Any = typing.get_origin(base) or base
    names: dict[Any, str] = {str: "text", int: "integer", float: "number", bool: "`true` \\| `false`", Path: "path"}
    if origin in (list, dict):
        return "JSON " + ("list" if origin is list else "object")
    return names.get(origin, str(base))


def _default(name: str, info: FieldInfo) -> str:
    value: Any = info.default
    if value is PydanticUndefined and info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    if value is None:
        return "unset"
    if isinstance(value, Path):
        return f"`{value if value.is_absolute() else './' + str(value)}`"
    if value == "":
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list | dict):
        return f"`{json.dumps(value)}`" if value else ("none" if isinstance(value, list) else "`{}`")
    return f"`{value}`"


def setting_docs(settings_class: type | None = None) -> list[SettingDoc]:
    if settings_class is None:
        from app.settings import Settings

        settings_class = Settings
    fields: dict[str, FieldInfo] = settings_class.model_fields  # type: ignore[attr-defined]
    return [
        SettingDoc(
            name,
            ENV_PREFIX + name.upper(),
            _written(info),
            _default(name, info),
            info.description or FALLBACK_DESCRIPTIONS.get(name, UNDESCRIBED),
        )
        for name, info in fields.items()
    ]


def settings_table(docs: list[SettingDoc] | None = None) -> str:
    rows = docs if docs is not None else setting_docs()
    lines = [
        "| Environment variable | Setting | Value | Default | What it does |",
        "|---|---|---|---|---|",
        *(f"| `{d.env}` | `{d.field}` | {d.written} | {cell(d.default)} | {cell(d.description)} |" for d in rows),
    ]
    return "\n".join(lines) + "\n"

"""docs/api-reference.md from the OpenAPI document of the app the server runs (`GET /openapi.json`).

`openapi_document()` builds that app — NiceGUI's FastAPI app with the API mounted, exactly as `autoloader serve`
does (app/main.py) — on a throw-away data dir, and asks it for `openapi()`; nothing listens on a port. NiceGUI's
app is one per process, so this runs in a process of its own (the generator's command).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from docs.gen.regions import REGENERATE, cell

INTERNAL_PREFIXES = ("/_nicegui",)
"""NiceGUI's own asset routes: not part of the product's API."""
SUCCESS = ("200", "201", "202", "204")
LARGE = 1e15
"""Bounds at or beyond this (the 64-bit id range) are not worth printing."""


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the served app, built over a temporary data dir."""
    from nicegui import app

    from app.main import build
    from app.settings import Settings

    with tempfile.TemporaryDirectory(prefix="autoloader-openapi-") as tmp:
        data, landing = Path(tmp) / "data", Path(tmp) / "landing"
        landing.mkdir()
        settings = Settings(
            data_dir=data,
            database_url=f"sqlite:///{data / 'autoloader.db'}",
            secret_key="openapi-only",
            local_roots=[landing],
        )
        build(settings)
        document: dict[str, Any] = app.openapi()
    return document


def _anchor(name: str) -> str:
    return name.lower()


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _bounds(schema: dict[str, Any]) -> str:
    parts = []
    for key, shown in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")):
        value = schema.get(key)
        if value is not None and abs(value) < LARGE:
            parts.append(f"{shown} {value:g}")
    if schema.get("maxLength") is not None:
        parts.append(f"≤ {schema['maxLength']} chars")
    if schema.get("maxItems") is not None:
        parts.append(f"≤ {schema['maxItems']} items")
    return f" ({', '.join(parts)})" if parts else ""


def type_text(schema: dict[str, Any]) -> str:
    """A JSON schema as a short phrase: `string`, `array of [RunPublic](#runpublic)`, `integer or null`."""
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return f"[{name}](#{_anchor(name)})"
    for combiner in ("anyOf", "oneOf"):
        if combiner in schema:
            options = [type_text(option) for option in schema[combiner]]
            return " or ".join(dict.fromkeys(options))
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return type_text(schema["allOf"][0])
    if "enum" in schema:
        return " \\| ".join(f"`{value}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type")
    if kind == "array":
        return f"array of {type_text(schema.get('items', {}))}{_bounds(schema)}"
    if kind == "object":
        values = schema.get("additionalProperties")
        return f"object of {type_text(values)}" if isinstance(values, dict) and values else "object"
    if kind is None:
        return "any"
    shown = f"{kind} ({schema['format']})" if "format" in schema else str(kind)
    return shown + _bounds(schema)


def _body_text(content: dict[str, Any]) -> str:
    parts = []
    for media, entry in content.items():
        schema = entry.get("schema", {})
        shown = type_text(schema) if schema else "any"
        parts.append(shown if media == "application/json" else f"{shown} (`{media}`)")
    return ", ".join(parts)


def _parameters(operation: dict[str, Any]) -> list[str]:
    parameters = operation.get("parameters", [])
    if not parameters:
        return []
    lines = ["", "| Parameter | In | Type | Required | Description |", "|---|---|---|---|---|"]
    for p in parameters:
        schema = p.get("schema", {})
        description = p.get("description") or schema.get("description") or ""
        default = f" Default `{json.dumps(schema['default'])}`." if "default" in schema else ""
        lines.append(
            f"| `{p['name']}` | {p['in']} | {type_text(schema)} | {'yes' if p.get('required') else 'no'} | "
            f"{cell(description + default)} |"
        )
    return lines


def _answers(operation: dict[str, Any], common_errors: set[str]) -> list[str]:
    responses: dict[str, Any] = operation.get("responses", {})
    answers = []
    for status, response in responses.items():
        if status in common_errors and status not in SUCCESS:
            continue
        content = response.get("content")
        shown = _body_text(content) if content else "no body"
        answers.append(f"`{status}` {shown}")
    errors = sorted(set(responses) - set(SUCCESS))
    note = "the common errors" if set(errors) == common_errors else "errors " + ", ".join(f"`{e}`" for e in errors)
    return ["", f"Answers: {'; '.join(answers)}; {note}."]


def _operation(method: str, path: str, operation: dict[str, Any], common_errors: set[str]) -> list[str]:
    lines = ["", f"### `{method.upper()} {path}`", "", f"**{operation.get('summary', '')}.**"]
    description = (operation.get("description") or "").strip()
    if description:
        lines += ["", description]
    lines += _parameters(operation)
    body = operation.get("requestBody")
    if body:
        required = " (required)" if body.get("required") else ""
        lines += ["", f"Body{required}: {_body_text(body.get('content', {}))}."]
    return lines + _answers(operation, common_errors)


def _schema(name: str, schema: dict[str, Any]) -> list[str]:
    lines = ["", f"### {name}"]
    description = (schema.get("description") or "").strip()
    if description:
        lines += ["", description]
    properties: dict[str, Any] = schema.get("properties", {})
    if not properties:
        return [*lines, "", f"{type_text({k: v for k, v in schema.items() if k != 'title'})}."]
    required = set(schema.get("required", []))
    lines += ["", "| Field | Type | Required | Default | Description |", "|---|---|---|---|---|"]
    for field, spec in properties.items():
        default = f"`{json.dumps(spec['default'])}`" if "default" in spec else ""
        lines.append(
            f"| `{field}` | {type_text(spec)} | {'yes' if field in required else 'no'} | {cell(default)} | "
            f"{cell(spec.get('description', ''))} |"
        )
    return lines


def _operations(document: dict[str, Any]) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    """The product's operations grouped by tag, in the order the app registers them."""
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, methods in document["paths"].items():
        if path.startswith(INTERNAL_PREFIXES):
            continue
        for method, operation in methods.items():
            tag = (operation.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).append((method, path, operation))
    return by_tag


def _common_errors(by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]]) -> set[str]:
    """The error statuses every operation documents (app/api/errors.py ERROR_RESPONSES)."""
    sets = [set(op.get("responses", {})) - set(SUCCESS) for ops in by_tag.values() for _, _, op in ops]
    return set.intersection(*sets) if sets else set()


def api_reference(document: dict[str, Any]) -> str:
    info = document["info"]
    by_tag = _operations(document)
    common = _common_errors(by_tag)
    lines = [
        "# API reference",
        "",
        f"<!-- generated from the app's OpenAPI document by `{REGENERATE}`: do not edit by hand -->",
        "",
        f"{info['title']} {info['version']}: {info.get('description', '')} The server publishes the same document "
        "at `GET /openapi.json` and an interactive page at `/docs` (both need a login).",
        "",
        "**Authentication.** Every `/api/v1` route but `GET /api/v1/health` needs `Authorization: Bearer <token>` "
        "(an API token: `AUTOLOADER_ADMIN_TOKEN`, or `POST /api/v1/users/{user_id}/tokens`); `GET /metrics` needs "
        "an instance admin's token unless `AUTOLOADER_METRICS_PUBLIC=true`.",
        "",
        '**Errors.** Every error is `{"error": {"code", "message", "action"}}` ([ErrorBody](#errorbody)); a '
        "validation error adds `field` and `fields`. The common errors, documented on every operation: "
        + ", ".join(f"`{status}`" for status in sorted(common))
        + ". Each code, what it means and what to do: [troubleshooting.md](troubleshooting.md).",
        "",
        "Operations by tag: " + ", ".join(f"[{tag}](#{_anchor(tag)})" for tag in by_tag) + "; then the "
        "[schemas](#schemas).",
    ]
    for tag, operations in by_tag.items():
        lines += ["", f"## {tag}"]
        for method, path, operation in operations:
            lines += _operation(method, path, operation, common)
    lines += ["", "## Schemas"]
    for name, schema in sorted(document.get("components", {}).get("schemas", {}).items()):
        lines += _schema(name, schema)
    return "\n".join(lines) + "\n"

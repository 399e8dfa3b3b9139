"""The console's phrasing of errors: the services word their actions for the API (endpoints, body fields, pydantic
texts); the console tells the same thing in the words of its own buttons and fields. The API keeps its wording."""

from __future__ import annotations

import re

from core.errors import AutoloaderError
from core.wording import sentence

_API_HINT = re.compile(r"\s*\((?:console: (?P<console>[^,)]+), or )?(?:POST|PUT|GET|DELETE|PATCH) [^)]*\)")
"""An endpoint named in brackets, e.g. "(POST …/resume)" or "(console: Review, or POST …/resolve)"."""
_ENDPOINT_BUTTONS = {"/resume": "Resume", "/activate": "Activate", "/resolve": "Review"}
_BODY_FIELD_HINT = re.compile(r"Send (?P<field>default_values), e\.g\. \{\"(?P<column>[^\"]*)\": [^}]*\}\.")
FIELD_MESSAGES = {
    "Input should be a valid list": "Enter one or more values, separated by commas.",
    "Input should be a valid integer": "Enter a whole number.",
    "Input should be a valid number": "Enter a number.",
    "Input should be a valid boolean": "Choose yes or no.",
    "Field required": "This field is required.",
    "manual schema inference needs schema_json": (
        'Paste the table schema as JSON, e.g. [{"name": "id", "type": "bigint"}], or choose Auto-detect schema.'
    ),
}
"""Validation texts of the spec's models (pydantic's and core/config.py's), as the wizard shows them."""


def console_action(action: str) -> str:
    """The action without API endpoints: "Resume it first (POST …/resume), then run it." → "Resume it first (the
    Resume button), then run it."."""

    def button(match: re.Match[str]) -> str:
        if match.group("console"):
            return f" (the {match.group('console')} button)"
        named = next((b for path, b in _ENDPOINT_BUTTONS.items() if path in match.group(0)), None)
        return f" (the {named} button)" if named else ""

    action = _API_HINT.sub(button, action)
    return _BODY_FIELD_HINT.sub(lambda m: f"Enter a default value for {m.group('column')} in the form.", action)


_BOUND = re.compile(r"Input should be (?P<side>greater|less) than or equal to (?P<limit>-?[\d.]+)$")
"""pydantic's bound messages ("Input should be less than or equal to 59"), said as a range end."""


def console_field_message(message: str) -> str:
    """A validation message in the form's words (unknown ones pass unchanged)."""
    for raw, worded in FIELD_MESSAGES.items():
        if message == raw or message.startswith(raw + ","):
            return worded
    if bound := _BOUND.match(message):
        limit = bound.group("limit")
        return f"Enter {limit} or more." if bound.group("side") == "greater" else f"Enter {limit} or less."
    return message


def console_error_text(exc: AutoloaderError) -> str:
    return f"{sentence(exc.message)} {console_action(exc.action)}".strip()

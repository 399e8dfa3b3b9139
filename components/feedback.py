"""Toasts and field errors: users see the message and the action, never a stack trace."""

from __future__ import annotations

from nicegui import ui

from components.console_words import console_error_text
from core.errors import AutoloaderError


def error_text(exc: AutoloaderError) -> str:
    """The message and the action, in the console's words (no API endpoints or body fields)."""
    return console_error_text(exc)


def notify_error(exc: AutoloaderError) -> None:
    ui.notify(error_text(exc), type="negative", multi_line=True, close_button=True, timeout=10_000)


def notify_ok(message: str) -> None:
    ui.notify(message, type="positive")

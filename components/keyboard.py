"""Keyboard reach for click-only widgets (WCAG 2.1.1): a card or box chosen among others acts as a radio button."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import ui


def radio_choice(element: ui.element, on_choose: Callable[[], Any], *, enabled: bool = True) -> ui.element:
    """Make `element` a focusable radio that Enter, Space and a click choose (its group carries role=radiogroup)."""
    element.props('tabindex=0 role=radio aria-checked="false"')
    if not enabled:
        element.props('aria-disabled="true"')
        return element
    element.on("click", lambda _: on_choose())
    element.on("keydown.enter.prevent", lambda _: on_choose())
    element.on("keydown.space.prevent", lambda _: on_choose())
    return element


def mark_checked(element: ui.element, checked: bool) -> None:
    element.props(f'aria-checked="{"true" if checked else "false"}"')


def radio_group(element: ui.element, name: str) -> ui.element:
    """The container of `radio_choice` elements, named for screen readers."""
    return element.props(f'role=radiogroup aria-label="{name}"')

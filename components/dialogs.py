"""A dialog named for assistive technology: axe's aria-dialog-name asks every role=dialog for an accessible name."""

from __future__ import annotations

from nicegui import ui


def named_dialog(title: str) -> ui.dialog:
    """A dialog whose accessible name is `title`, the heading it shows."""
    dialog = ui.dialog()
    dialog.props["aria-label"] = title
    return dialog

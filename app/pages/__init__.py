"""Console screens, one module each."""

from __future__ import annotations


def register_pages() -> None:
    from app.pages import home  # noqa: F401  (the @ui.page decorators register the routes)

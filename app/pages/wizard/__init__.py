"""The ingestion wizard: one module per step over a `SpecDraft` (draft.py), the only service calls in actions.py."""

from app.pages.wizard.page import edit_ingestion_page, new_ingestion_page

__all__ = ["edit_ingestion_page", "new_ingestion_page"]

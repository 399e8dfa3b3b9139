"""Test & Preview: connection, files, inferred schema and sample rows of a configuration. Writes nothing."""

from __future__ import annotations

from app.services.engines import Engines
from core.config import IngestionSpec
from core.preview import PreviewResult, preview
from core.storage import open_storage


class PreviewService:
    def __init__(self, engines: Engines):
        self.engines = engines

    def test(self, spec: IngestionSpec) -> PreviewResult:
        return preview(spec, open_storage(spec.source), self.engines.for_spec(spec))

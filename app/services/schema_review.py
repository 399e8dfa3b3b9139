"""Schema review: show what a resolution will run, then apply it and load the held files."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from app.db.repository import NotificationStore, SqlStore
from app.services.engines import Engines
from app.services.ingestions import IngestionService
from app.services.runs import RunService
from core.access import SYSTEM, Principal, require_owner, require_visible
from core.alerts import AlertKind
from core.config import IngestionSpec
from core.domain import IngestionStatus
from core.engines.base import Engine
from core.errors import Conflict
from core.formats import schema_from_json, schema_to_json
from core.schema import data_fields
from core.schema_resolution import ResolutionPlan, plan_resolution


class SchemaReviewService:
    def __init__(
        self,
        store: SqlStore,
        notifications: NotificationStore,
        engines: Engines,
        ingestions: IngestionService,
        runs: RunService,
    ):
        self.store = store
        self.notifications = notifications
        self.engines = engines
        self.ingestions = ingestions
        self.runs = runs

    def plan(
        self,
        ingestion_id: int,
        version: int,
        resolution: str,
        default_values: dict[str, Any] | None = None,
        table: str | None = None,
        who: Principal = SYSTEM,
    ) -> ResolutionPlan:
        """What a resolution will run, shown before it is applied."""
        ingestion = self.store.get_ingestion(ingestion_id, who.tenant_id)
        require_visible(who, ingestion.created_by, ingestion_id)
        pending = self.store.get_schema_version(ingestion_id, version)
        if pending.status != "pending":
            raise Conflict(
                f"Schema version {version} is already {pending.status}.", "List the schema history for the current one."
            )
        return plan_resolution(
            resolution, ingestion.spec.destination.full_name, pending.columns, pending.changes, default_values, table
        )

    def resolve(
        self,
        ingestion_id: int,
        version: int,
        resolution: str,
        default_values: dict[str, Any] | None = None,
        table: str | None = None,
        who: Principal = SYSTEM,
    ) -> tuple[ResolutionPlan, int | None]:
        """Apply a decision on a pending schema change; every choice but review_later resumes the ingestion and
        loads the held files at once. Returns the plan and the run id."""
        plan = self.plan(ingestion_id, version, resolution, default_values, table, who)
        ingestion = self.store.get_ingestion(ingestion_id, who.tenant_id)
        require_owner(who, ingestion.created_by, "resolve schema changes")
        audit = {"version": version, "resolution": resolution, "statements": plan.statements}
        if resolution == "review_later":
            self.store.audit("schema_review_later", "ingestion", ingestion_id, who.actor, who.tenant_id, **audit)
            return plan, None
        pending = self.store.get_schema_version(ingestion_id, version)
        engine = self.engines.for_ingestion(ingestion)
        spec = self._apply(engine, ingestion.spec, plan, schema_from_json(pending.columns))
        if spec is not ingestion.spec:
            self.store.update_ingestion(ingestion_id, spec, ingestion.revision)  # not over an edit saved meanwhile
        current = engine.table_schema(spec.destination)
        columns = schema_to_json(pa.schema(data_fields(current))) if current is not None else pending.columns
        self.store.resolve_schema_version(ingestion_id, version, resolution, who.actor, columns)
        released = self.store.release_held_files(ingestion_id)
        self.notifications.clear(ingestion_id, AlertKind.SCHEMA_PENDING.value)
        self.store.audit(
            "schema_resolve", "ingestion", ingestion_id, who.actor, who.tenant_id, released_files=released, **audit
        )
        self.ingestions.change_status(ingestion_id, IngestionStatus.ACTIVE, "resume", who)
        return plan, self.runs.trigger(ingestion_id, "manual", who)

    @staticmethod
    def _apply(engine: Engine, spec: IngestionSpec, plan: ResolutionPlan, proposed: pa.Schema) -> IngestionSpec:
        """Change the table (or the spec) as the plan says; returns the spec to keep (the same object if unchanged)."""
        destination = spec.destination
        if plan.resolution in ("auto_merge", "backfill_default"):
            columns = [c["column"] for c in plan.added] + plan.grown
            engine.add_columns(destination, [proposed.field(name) for name in columns])
            if plan.widened:
                engine.widen_columns(destination, [proposed.field(c["column"]) for c in plan.widened])
            for column, value in plan.defaults.items():
                engine.fill_column(destination, column, value)
            return spec
        if plan.resolution == "new_table":
            assert plan.new_table is not None
            moved = destination.model_copy(update={"table": plan.new_table.rsplit(".", 1)[1]})
            if engine.table_schema(moved) is not None:
                raise Conflict(f"Table {moved.full_name} already exists.", "Give another table name.", field="table")
            return spec.model_copy(update={"destination": moved})
        if plan.resolution == "ignore":
            current = spec.format.schema_
            settings = current.model_copy(
                update={
                    "ignored_columns": sorted({*current.ignored_columns, *plan.ignored}),
                    "hints": {**current.hints, **plan.kept_types},
                }
            )
            return spec.model_copy(update={"format": spec.format.model_copy(update={"schema_": settings})})
        return spec

"""Ingestions: create, edit (with the parts that lock once active), delete, and the status changes — each audited,
and the schedule follows at once in a running server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlmodel import col

from app.db.models import LedgerFile
from app.db.repository import SqlStore
from app.services.clusters import ClusterService
from app.services.engines import Engines
from app.services.preview import refuse_existing_table
from core.access import SYSTEM, Principal, require_change, require_owner, require_visible, sees
from core.config import SECRET_FIELDS, SECRET_MASK, IngestionSpec, SourceConfig, masked_webhook, name_as_entered
from core.domain import FileStatus, Ingestion, IngestionStatus, LedgerEntry
from core.errors import ConfigError, Conflict, RunInProgress
from core.guards import Guards
from core.pipeline import owner_is_dead
from core.spark_sources import refuse_source_spark_cannot_read
from core.storage import open_storage
from core.table_files import files_the_table_holds, same_table_and_source

LOCKED_PARTS = ("source", "format", "destination", "cluster_id")
OPEN_UNTIL_LOADED = ("source", "format")
"""Parts that stay open on an activated ingestion until it has loaded a file (nothing in the table depends on
them yet): a wrong path, pattern or format is fixed in place, not by delete-and-recreate."""


class ScheduleSync(Protocol):
    """The scheduler as the services see it: make an ingestion's job follow its status and schedule."""

    def sync(self, ingestion: Ingestion, catch_up: bool = False) -> None: ...

    def remove(self, ingestion_id: int, persist: bool = True) -> None: ...


def secret_place(source: SourceConfig) -> tuple[str, str, str]:
    """Where a source's secret is sent: its type, the path's host (bucket, account, SFTP server) and endpoint."""
    return source.type, urlsplit(source.path).netloc.lower(), (source.endpoint_url or "").lower()


def keep_masked_secrets(current: IngestionSpec, new: IngestionSpec) -> IngestionSpec:
    """A secret sent back as the API's mask keeps the stored secret (a GET → PUT round trip changes nothing), as
    long as the source still sends it to the same place: a stored secret never follows a change of bucket, host or
    endpoint (an attack helper sent an SFTP password to a host of its own that way)."""
    new = _keep_masked_webhook(current, new)
    credentials = new.source.credentials
    kept = {
        key: getattr(current.source.credentials, key)
        for key in SECRET_FIELDS
        if getattr(credentials, key, None) == SECRET_MASK
    }
    if not kept:
        return new
    if secret_place(current.source) != secret_place(new.source):
        raise ConfigError(
            "The source now points at another bucket, host or endpoint; its stored secret is not sent there.",
            "Enter the credentials again together with the new location.",
            field="source.credentials",
        )
    source = new.source.model_copy(update={"credentials": credentials.model_copy(update=kept)})
    return new.model_copy(update={"source": source})


def _keep_masked_webhook(current: IngestionSpec, new: IngestionSpec) -> IngestionSpec:
    """The webhook URL sent back as the API shows it (its host, the path masked) keeps the stored one."""
    url = new.quality.webhook_url
    if not url or url != masked_webhook(current.quality.webhook_url):
        return new
    quality = new.quality.model_copy(update={"webhook_url": current.quality.webhook_url})
    return new.model_copy(update={"quality": quality})


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: an object in the patch merges into the target's object member by member, null removes a member (its
    default comes back when validated), anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def locked_part_changed(current: IngestionSpec, new: IngestionSpec, open_parts: tuple[str, ...] = ()) -> str | None:
    """The first part that cannot change once an ingestion is active and differs, if any. Credentials may be
    rotated on an active ingestion: they do not lock; `open_parts` are not locked yet."""
    old, changed = current.model_dump(), new.model_dump()
    for part in LOCKED_PARTS:
        if part in open_parts:
            continue
        if _comparable(part, old[part]) != _comparable(part, changed[part]):
            return part
    return None


SCHEMA_DECISIONS = ("on_schema_change", "ignored_columns")
"""Schema-evolution decisions stay editable after loading: they change what happens to the next change, never the
rows already in the table (the schema-failure message advises switching the policy; an ignore is reversible)."""


SOURCE_TUNING = ("credentials", "incremental_listing", "full_listing_interval_hours")
"""Source settings that stay editable on an active ingestion: credentials rotate; listing incrementally or not never
loses or repeats a file (core.ports.ListingState)."""


def keep_location(current: IngestionSpec, new: IngestionSpec) -> IngestionSpec:
    """A spec sent without `destination.location` keeps the stored one (a client need not know the product's field)."""
    stored = current.destination.location
    if new.destination.location is not None or stored is None:
        return new
    return new.model_copy(update={"destination": new.destination.model_copy(update={"location": stored})})


def refuse_hand_set_location(spec: IngestionSpec, stored: str | None) -> None:
    """`destination.location` is the product's to set (moving between engines, app/services/engine_move.py): a
    location typed in could point a cluster's writes at any folder it can reach."""
    if spec.destination.location != stored:
        raise ConfigError(
            "destination.location is set by the product when an ingestion moves from the embedded engine to a "
            "cluster; it cannot be set or changed by hand.",
            "Leave it out (or send back the value you read); to run on a cluster, move the ingestion "
            "(POST /api/v1/ingestions/{id}/engine).",
            field="destination.location",
        )


def _comparable(part: str, value: Any) -> Any:
    if part == "source":
        return {k: v for k, v in value.items() if k not in SOURCE_TUNING}
    if part == "format":
        schema = {k: v for k, v in value["schema_"].items() if k not in SCHEMA_DECISIONS}
        return {**value, "schema_": schema}
    return value


class IngestionService:
    def __init__(
        self,
        store: SqlStore,
        engines: Engines,
        clusters: ClusterService,
        schedules: ScheduleSync,
        stale_after: timedelta,
        guards: Guards,
    ):
        self.store = store
        self.engines = engines
        self.clusters = clusters
        self.schedules = schedules
        self.stale_after = stale_after
        self.guards = guards

    def get(self, who: Principal, ingestion_id: int, change: str | None = None) -> Ingestion:
        """The ingestion if `who` may see it (another tenant's is NotFound), and change it when `change` says what."""
        ingestion = self.store.get_ingestion(ingestion_id, who.tenant_id)
        if change is not None:
            require_owner(who, ingestion.created_by, change)
        else:
            require_visible(who, ingestion.created_by, ingestion_id)
        return ingestion

    def create(self, spec: IngestionSpec, activate: bool = False, who: Principal = SYSTEM) -> Ingestion:
        require_change(who, "create ingestions")
        refuse_hand_set_location(spec, None)
        self._check_cluster(who, spec)
        self.guards.check_spec(spec)
        if activate and spec.cluster_id is None:  # refused before anything is stored
            refuse_existing_table(spec, self.engines.for_spec(spec, who.tenant_id))
        if activate:
            self._refuse_same_table_and_source(spec, who.tenant_id, who)
        ingestion = self.store.create_ingestion(spec, IngestionStatus.DRAFT, who.tenant_id, who.user_id)
        self.store.audit("create", "ingestion", ingestion.id, who.actor, who.tenant_id, name=spec.name)
        if activate:
            ingestion = self.activate(ingestion.id, who)
        return ingestion

    def update(
        self, ingestion_id: int, spec: IngestionSpec, who: Principal = SYSTEM, expected_revision: int | None = None
    ) -> Ingestion:
        """Save the whole settings. `expected_revision`: the revision they were read at (the console's edit page,
        the API's If-Match); refused (EditConflict) when another save came since, instead of undoing it."""
        current = self.get(who, ingestion_id, "edit ingestions")
        if spec.name == name_as_entered(current.name):  # an older name with spaces around it, sent back unchanged
            spec = spec.model_copy(update={"name": current.name})
        spec = keep_location(current.spec, keep_masked_secrets(current.spec, spec))
        refuse_hand_set_location(spec, current.spec.destination.location)
        self._check_cluster(who, spec)
        self.guards.check_spec(spec)
        if current.status != IngestionStatus.DRAFT:
            self._refuse_same_table_and_source(spec, current.tenant_id, who, ingestion_id)
            open_parts = () if self.has_loaded(ingestion_id) else OPEN_UNTIL_LOADED
            part = locked_part_changed(current.spec, spec, open_parts)
            if part is not None:
                raise Conflict(
                    f"'{part}' cannot change once an ingestion has been activated"
                    + (" and has loaded files." if part in OPEN_UNTIL_LOADED else "."),
                    "Create a new ingestion for a different source, format, target table or engine.",
                    field=part,
                )
            self._refuse_open_part_change_while_running(ingestion_id, current.spec, spec, open_parts)
        updated = self.store.update_ingestion(ingestion_id, spec, expected_revision)
        self.store.audit("update", "ingestion", ingestion_id, who.actor, who.tenant_id, name=spec.name)
        self.schedules.sync(updated)
        return updated

    def patch(
        self,
        ingestion_id: int,
        changes: dict[str, Any],
        who: Principal = SYSTEM,
        expected_revision: int | None = None,
    ) -> Ingestion:
        """Change some settings: `changes` merged into the current ones as a JSON merge patch (RFC 7396), then
        saved as `update` saves a whole body (the same checks and locks). Raises pydantic's ValidationError for a
        result that does not validate."""
        current = self.get(who, ingestion_id, "edit ingestions")
        settings = current.spec.model_dump(mode="json", by_alias=True)
        settings["source"]["credentials"] = current.spec.source.credentials.masked()  # kept as PUT keeps them
        merged = merge_patch(settings, changes)
        return self.update(ingestion_id, IngestionSpec.model_validate(merged), who, expected_revision)

    def _refuse_open_part_change_while_running(
        self, ingestion_id: int, current: IngestionSpec, spec: IngestionSpec, open_parts: tuple[str, ...]
    ) -> None:
        """The source and the format are open until a file has loaded, but not under a run that reads with them:
        its files would be recorded against a source the ingestion no longer has."""
        part = locked_part_changed(current, spec) if open_parts else None
        if part is None:
            return
        active = self.store.active_run(ingestion_id)
        if active is not None and active.run_id > 0:  # a run whose end is written releases its slot next: not reading
            ended = self.store.get_run_by_id(active.run_id)
            active = None if ended is not None and ended.status not in ("queued", "running") else active
        if active is not None:
            raise RunInProgress(
                f"{active.label} of this ingestion is reading its source now; the source and the format can change "
                "once it has ended.",
                "Wait for the run to end (or cancel it), then save again.",
                field=part,
            )

    def has_loaded(self, ingestion_id: int) -> bool:
        """Whether any file of this ingestion is in its table (from then on its format is locked too)."""
        loaded = (
            select(col(LedgerFile.path))
            .where(col(LedgerFile.ingestion_id) == ingestion_id, col(LedgerFile.status) == FileStatus.LOADED.value)
            .limit(1)
        )
        with self.store.session() as s:
            return s.execute(loaded).first() is not None

    def _check_cluster(self, who: Principal, spec: IngestionSpec) -> None:
        """Saving needs the tenant's cluster to exist, not to be running (a local cluster starts on the first run),
        and a source the cluster can read (core/spark_sources.py)."""
        if spec.cluster_id is not None:
            self.clusters.require(spec.cluster_id, who.tenant_id)
            refuse_source_spark_cannot_read(spec)

    def refuse_while_running(self, ingestion: Ingestion, doing: str) -> None:
        """Raise RunInProgress while a live run (or table maintenance) holds the ingestion's slot."""
        active = self.store.active_run(ingestion.id)
        if active is not None and not owner_is_dead(active, self.stale_after, datetime.now(UTC)):
            raise RunInProgress(
                f"{active.label.capitalize()} of '{ingestion.name}' is in progress.",
                f"Wait for it to finish before {doing}.",
            )

    def delete(self, ingestion_id: int, drop_table: bool = False, who: Principal = SYSTEM) -> None:
        ingestion = self.get(who, ingestion_id, "delete ingestions")
        self.refuse_while_running(ingestion, "deleting it")
        if drop_table:
            self.engines.for_ingestion(ingestion).drop_table(ingestion.spec.destination)
        self.schedules.remove(ingestion_id)
        self.store.delete_ingestion(ingestion_id)
        self.store.audit(
            "delete", "ingestion", ingestion_id, who.actor, who.tenant_id, name=ingestion.name, drop_table=drop_table
        )

    # --- status -------------------------------------------------------------------------------------------------------
    def activate(self, ingestion_id: int, who: Principal = SYSTEM) -> Ingestion:
        ingestion = self.get(who, ingestion_id, "activate ingestions")
        if ingestion.status == IngestionStatus.DRAFT and ingestion.spec.cluster_id is None:
            refuse_existing_table(ingestion.spec, self.engines.for_ingestion(ingestion))
        self._refuse_same_table_and_source(ingestion.spec, ingestion.tenant_id, who, ingestion_id)
        if ingestion.status == IngestionStatus.DRAFT and ingestion.spec.schedule.backfill.mode == "new_only":
            self._skip_existing_files(ingestion)
        elif ingestion.status == IngestionStatus.DRAFT and ingestion.spec.cluster_id is None:
            self._record_files_the_table_holds(ingestion, who)
        return self.change_status(ingestion_id, IngestionStatus.ACTIVE, "activate", who)

    def _record_files_the_table_holds(self, ingestion: Ingestion, who: Principal) -> None:
        """An append into a table that already holds rows of this source's files (an ingestion deleted with its
        table kept, then created again) records those files as loaded: loading them again duplicated every row.
        Reprocess loads them again on purpose."""
        spec = ingestion.spec
        engine = self.engines.for_ingestion(ingestion)
        if spec.destination.write_mode != "append" or engine.table_schema(spec.destination) is None:
            return
        listed = list(open_storage(spec.source, self.guards).list_files(spec.source.file_pattern))
        entries = files_the_table_holds(engine, spec, listed, set(self.store.known_files(ingestion.id)))
        if entries:
            self.store.upsert_files(ingestion.id, None, entries)
            self.store.audit(
                "adopt_files", "ingestion", ingestion.id, who.actor, who.tenant_id, files=len(entries),
                reason=f"{spec.destination.full_name} already held their rows (_source_file)",
            )  # fmt: skip

    def _refuse_same_table_and_source(
        self, spec: IngestionSpec, tenant_id: int, who: Principal, ingestion_id: int | None = None
    ) -> None:
        """Two ingestions of one source into one table keep two ledgers, so each would load every file: refused
        once the second would load (activated, resumed, edited while not a draft); drafts do not load. One the
        caller does not see (another user's, to a member) is not named."""
        for other in self.store.list_ingestions():
            if other.id == ingestion_id or other.tenant_id != tenant_id or other.status == IngestionStatus.DRAFT:
                continue
            if not same_table_and_source(spec, other.spec):
                continue
            twice = "two ingestions of one source into one table would load every file twice."
            if not sees(who, other.created_by):
                raise Conflict(
                    f"Another user's ingestion already loads {spec.source.path} into {spec.destination.full_name}: "
                    + twice,
                    "Choose another table, or ask an admin of your tenant.",
                    field="destination.table",
                )
            raise Conflict(
                f"'{other.name}' already loads {spec.source.path} into {spec.destination.full_name}: {twice}",
                f"Edit '{other.name}' instead, choose another table, or delete '{other.name}' first (its table "
                "can be kept: the files its _source_file column names are then recorded as loaded, not loaded "
                "again).",
                field="destination.table",
            )

    def pause(self, ingestion_id: int, who: Principal = SYSTEM) -> Ingestion:
        ingestion = self.get(who, ingestion_id, "pause ingestions")
        if ingestion.status == IngestionStatus.DRAFT:
            raise Conflict(
                f"'{ingestion.name}' is a draft: it does not run, so there is nothing to pause.",
                "Activate it (POST …/activate) once its Test & Preview looks right.",
            )
        return self.change_status(ingestion_id, IngestionStatus.PAUSED, "pause", who)

    def resume(self, ingestion_id: int, who: Principal = SYSTEM) -> Ingestion:
        ingestion = self.get(who, ingestion_id, "resume ingestions")
        if ingestion.status == IngestionStatus.DRAFT:
            raise Conflict(
                f"'{ingestion.name}' is a draft: it has never been activated, so it cannot be resumed.",
                "Activate it (POST …/activate) once its Test & Preview looks right.",
            )
        if ingestion.status != IngestionStatus.PAUSED:
            raise Conflict(f"'{ingestion.name}' is {ingestion.status}, not paused.", "Nothing to resume.")
        self._refuse_same_table_and_source(ingestion.spec, ingestion.tenant_id, who, ingestion_id)
        return self.change_status(ingestion_id, IngestionStatus.ACTIVE, "resume", who)

    def change_status(self, ingestion_id: int, status: IngestionStatus, action: str, who: Principal) -> Ingestion:
        """Set the status, audit it and make the schedule follow at once (the caller has checked `who` may)."""
        self.store.set_ingestion_status(ingestion_id, status)
        self.store.audit(action, "ingestion", ingestion_id, who.actor, who.tenant_id)
        changed = self.store.get_ingestion(ingestion_id)
        self.schedules.sync(changed)
        return changed

    def _skip_existing_files(self, ingestion: Ingestion) -> None:
        """Backfill 'new files only': what is there at activation is recorded as skipped, not loaded."""
        storage = open_storage(ingestion.spec.source, self.guards)
        known = self.store.known_files(ingestion.id)
        entries = [
            LedgerEntry(f.path, f.size, f.modified, f.etag, FileStatus.SKIPPED, error="existed before activation")
            for f in storage.list_files(ingestion.spec.source.file_pattern)
            if f.path not in known
        ]
        self.store.upsert_files(ingestion.id, None, entries)

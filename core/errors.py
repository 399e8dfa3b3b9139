"""Typed errors: every error carries a user message and the action to take.

`TransientError`s are worth retrying (network, throttling, an endpoint that is
down); `TerminalError`s are not (bad credentials, a missing path, bad config).
"""

from __future__ import annotations


class AutoloaderError(Exception):
    """Base error. `code` is stable and machine-readable; `http_status` maps it to the API."""

    code = "error"
    http_status = 500
    transient = False

    def __init__(self, message: str, action: str = "", *, detail: str = "", field: str | None = None):
        super().__init__(message)
        self.message = message
        self.action = action
        self.detail = detail
        self.field = field

    def to_dict(self) -> dict[str, str]:
        body = {"code": self.code, "message": self.message, "action": self.action}
        if self.field:
            body["field"] = self.field
        return body


class TransientError(AutoloaderError):
    code = "transient"
    http_status = 503
    transient = True


class TerminalError(AutoloaderError):
    code = "terminal"
    http_status = 400


class StorageUnavailable(TransientError):
    code = "storage_unavailable"


class OutOfSpace(TransientError):
    """The disk or quota under the warehouse is full: nothing of the batch was committed, and the run is retried
    (a full disk is usually freed by someone, not fixed by a setting)."""

    code = "out_of_space"


class WarehouseNotWritable(TransientError):
    """The warehouse's local disk refuses writes (read-only, permissions): nothing of the batch was committed, and
    the run is retried (an operator remounts or fixes the folder, no setting of Autoloader's changes it)."""

    code = "warehouse_not_writable"


_OUT_OF_SPACE_WORDS = (
    "no space left on device",
    "os error 28",
    "disk quota exceeded",
    "os error 122",
    "database or disk is full",
    "could not extend file",
    "insufficient storage",
    "quotaexceeded",
)


def says_out_of_space(text: str) -> bool:
    """The message of a failed write says the disk (or the quota) is full: ENOSPC and EDQUOT as Rust and Python
    spell them, SQLite's and PostgreSQL's words for it, and object stores' insufficient-storage answers."""
    lowered = text.lower()
    return any(word in lowered for word in _OUT_OF_SPACE_WORDS)


class StorageAuthError(TerminalError):
    code = "storage_auth_failed"
    http_status = 400


class FileRefused(TerminalError):
    """The store refuses to serve one listed file (an S3 object encrypted with a customer key, an archived one):
    that file is set aside, the others load."""

    code = "file_refused"


class SourceNotFound(TerminalError):
    code = "source_not_found"
    http_status = 400


class SourceChanged(TerminalError):
    """A listed file that is no longer the version the listing gave (rewritten since): it is not read, so that no
    load mixes two versions or records one version's etag for another's rows; the next run lists the new one."""

    code = "source_changed"


class ConfigError(TerminalError):
    code = "invalid_config"
    http_status = 422


class NotFound(TerminalError):
    code = "not_found"
    http_status = 404


class Conflict(TerminalError):
    code = "conflict"
    http_status = 409


class EditConflict(Conflict):
    """Settings sent from a form (or an API read) older than the last save: saving them would undo that save."""

    code = "edit_conflict"


class RunInProgress(Conflict):
    code = "run_in_progress"


class RunTakenOver(TerminalError):
    """A run another server has ended (its heartbeat was stale: the process paused, starved or cut off from the
    database for longer than the stale-run window) must write nothing more: the run that took over owns the
    ingestion's ledger now."""

    code = "run_taken_over"


def run_taken_over(run_id: int, status: str) -> RunTakenOver:
    return RunTakenOver(
        f"Run {run_id} was ended ({status}) by another server while this one still worked on it (its heartbeat was "
        "older than the stale-run window); it stops here without writing more.",
        "Nothing to do: the run that took over loads the remaining files. If it repeats, check that no server is "
        "paused or starved and that AUTOLOADER_STALE_RUN_SECONDS suits the slowest batch.",
    )


class ShuttingDown(TransientError):
    """The server is shutting down, or `autoloader run` got SIGTERM or Ctrl-C: a run ends at the next batch boundary,
    what it committed recorded, instead of being cut off part-way through a write; the rest loads in the next run
    (a server's retry after the restart)."""

    code = "shutting_down"


class TableError(TerminalError):
    code = "table_error"


class ConcurrentCommit(TransientError):
    """Another writer committed to the table while the batch was written, in a way Delta's optimistic concurrency
    does not let both stand (a schema change, a concurrent overwrite or delete): nothing of the batch was committed.
    The run writes the batch again against the table as it now is (a few times), then leaves it to its retry."""

    code = "concurrent_commit"


class MaintenanceNotSupported(Conflict):
    """The table's format has no compaction or vacuum here (plain parquet tables, Iceberg for now)."""

    code = "maintenance_not_supported"


class BadFileError(TerminalError):
    """A file that cannot be read at all; the pipeline quarantines it and goes on."""

    code = "bad_file"


class TooManyBadRecords(TerminalError):
    """A batch over `quality.max_bad_record_ratio`; `files` holds each file's (malformed, read) records so the
    pipeline can name and set aside the files that pushed it over."""

    code = "too_many_bad_records"

    def __init__(
        self,
        message: str,
        action: str = "",
        *,
        files: dict[str, tuple[int, int]] | None = None,
        detail: str = "",
        field: str | None = None,
    ):
        super().__init__(message, action, detail=detail, field=field)
        self.files = files or {}


class SchemaChangeError(TerminalError):
    code = "schema_change"


class Unauthorized(TerminalError):
    """No valid credentials: no token, an unknown or revoked one, or no session."""

    code = "unauthorized"
    http_status = 401


class Forbidden(TerminalError):
    """Valid credentials whose role does not allow the change."""

    code = "forbidden"
    http_status = 403


class RateLimited(TerminalError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, action: str, retry_after: int):
        super().__init__(message, action)
        self.retry_after = retry_after


class MetadataUnavailable(TransientError):
    """The metadata database did not answer within the run's retry budget."""

    code = "metadata_unavailable"

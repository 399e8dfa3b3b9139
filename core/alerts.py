"""Alert rules (PRODUCT.md §12) as pure functions: which conditions a run or a check raises or clears."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from core.domain import RunOutcome, RunStatus
from core.wording import counted


class AlertKind(StrEnum):
    RUN_FAILED = "run_failed"
    SCHEMA_PENDING = "schema_pending"
    ROWS_BELOW_MIN = "rows_below_min"
    RUN_OVER_SLA = "run_over_sla"
    NO_NEW_FILES = "no_new_files"
    FILE_CHANGED = "file_changed"
    FILES_QUARANTINED = "files_quarantined"


@dataclass(frozen=True, slots=True)
class Alert:
    """One condition on one ingestion: what happened and what to do."""

    kind: AlertKind
    ingestion_id: int
    ingestion_name: str
    title: str
    message: str
    action: str
    severity: str = "error"

    def link(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/ingestions/{self.ingestion_id}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """Conditions to raise and conditions that cleared after a run."""

    raise_: list[Alert]
    clear: list[AlertKind]


def judge_run(
    ingestion_id: int,
    name: str,
    outcome: RunOutcome,
    *,
    will_retry: bool,
    row_count_min: int | None,
    duration_sla_minutes: int | None,
    run_number: int | None = None,
) -> Verdict:
    """`run_number` names the run as the console does ("Run #3"); without it the run's id is named."""
    run = run_name(outcome.run_id, run_number)
    raised: list[Alert] = []
    cleared: list[AlertKind] = []
    metrics = outcome.metrics
    if outcome.schema_pending:
        raised.append(
            Alert(
                AlertKind.SCHEMA_PENDING,
                ingestion_id,
                name,
                f"Schema change in '{name}' needs review",
                outcome.message,
                "Open the schema review, compare the schemas and pick a resolution; the held files load when applied.",
                severity="warning",
            )
        )
    if outcome.status == RunStatus.FAILED and not will_retry:
        first = outcome.errors[0] if outcome.errors else None
        raised.append(
            Alert(
                AlertKind.RUN_FAILED,
                ingestion_id,
                name,
                f"{run} of '{name}' failed",
                outcome.message or "The run failed.",
                (first.action if first and first.action else "Open the run, fix the cause, then retry it."),
            )
        )
    elif outcome.status in (RunStatus.SUCCESS, RunStatus.PARTIAL):
        cleared.append(AlertKind.RUN_FAILED)
        if metrics.files_processed:
            cleared.append(AlertKind.NO_NEW_FILES)
    if outcome.status in (RunStatus.SUCCESS, RunStatus.PARTIAL) and row_count_min and metrics.files_processed:
        if metrics.records_ingested < row_count_min:
            raised.append(
                Alert(
                    AlertKind.ROWS_BELOW_MIN,
                    ingestion_id,
                    name,
                    f"'{name}' loaded {metrics.records_ingested:,} rows, below the minimum of {row_count_min:,}",
                    f"{run} loaded {counted(metrics.records_ingested, 'row')} "
                    f"from {counted(metrics.files_processed, 'file')}.",
                    "Check that the producer delivered complete files; adjust the minimum if the volume changed.",
                    severity="warning",
                )
            )
        else:
            cleared.append(AlertKind.ROWS_BELOW_MIN)
    if outcome.status in (RunStatus.SUCCESS, RunStatus.PARTIAL):
        changed = files_changed(ingestion_id, name, outcome, run)
        if changed is not None:
            raised.append(changed)
        else:
            cleared.append(AlertKind.FILE_CHANGED)
        quarantined = files_quarantined(ingestion_id, name, outcome, run)
        if quarantined is not None:
            raised.append(quarantined)
        elif metrics.files_processed:  # a check that found nothing new leaves it open (a continuous ingestion
            cleared.append(AlertKind.FILES_QUARANTINED)  # alerted once per bad file: an outside attack)
    if duration_sla_minutes and outcome.status != RunStatus.SKIPPED:
        if metrics.duration_seconds > duration_sla_minutes * 60:
            raised.append(over_sla(ingestion_id, name, run, metrics.duration_seconds, duration_sla_minutes))
        else:
            cleared.append(AlertKind.RUN_OVER_SLA)
    return Verdict(raised, cleared)


def run_name(run_id: int, number: int | None) -> str:
    """ "Run #3" (its number within the ingestion), or "Run 1234" (its id) for a run without a number."""
    return f"Run #{number}" if number is not None else f"Run {run_id}"


def files_changed(ingestion_id: int, name: str, outcome: RunOutcome, run: str | None = None) -> Alert | None:
    """An alert when the run found loaded files changed at the source and did not reload them (while it stays
    open, later changes do not alert again; a run that finds none clears it)."""
    paths = [e.file for e in outcome.errors if e.kind == "file_changed" and e.file]
    if not paths:
        return None
    shown = ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")
    return Alert(
        AlertKind.FILE_CHANGED,
        ingestion_id,
        name,
        f"{counted(len(paths), 'file')} of '{name}' changed after being loaded",
        f"{run or run_name(outcome.run_id, None)} found {shown} changed at the source; "
        "the table holds the versions loaded earlier.",
        "Turn on reload_changed_files to load the new versions (never duplicating rows); "
        "ask the producer to write new files instead of changing loaded ones.",
        severity="warning",
    )


def files_quarantined(ingestion_id: int, name: str, outcome: RunOutcome, run: str) -> Alert | None:
    """An alert when a run set files aside as unreadable or malformed (`partial`): a run that quarantined every file
    loaded nothing and told no one (an outside attack). Open until a run quarantines none."""
    count = outcome.metrics.files_quarantined
    if not count:
        return None
    paths = [e.file for e in outcome.errors if e.kind == "quarantined" and e.file]
    shown = ", ".join(paths[:3]) + (f" and {count - 3} more" if count > 3 else "")
    loaded = outcome.metrics.records_ingested
    return Alert(
        AlertKind.FILES_QUARANTINED,
        ingestion_id,
        name,
        f"{counted(count, 'file')} of '{name}' quarantined",
        f"{run} set aside {shown or counted(count, 'file')} as unreadable or malformed"
        + (f"; it loaded {counted(loaded, 'record')} from the other files." if loaded else "; it loaded nothing."),
        "Open the run's errors for each file's reason; fix or replace the files at the source (a quarantined file is "
        "tried again when it changes), or reprocess them after raising quality.max_bad_record_ratio.",
        severity="warning",
    )


def over_sla(ingestion_id: int, name: str, run: str, seconds: float, sla_minutes: int) -> Alert:
    """`run` names the run as people see it ("Run #3", `run_name`)."""
    return Alert(
        AlertKind.RUN_OVER_SLA,
        ingestion_id,
        name,
        f"{run} of '{name}' is slower than its {sla_minutes}-minute SLA",
        f"The run has taken {seconds / 60:.1f} minutes.",
        "Check the source volume and the engine; split the backlog or raise the SLA.",
        severity="warning",
    )


def no_new_files(
    ingestion_id: int, name: str, last_file_at: datetime | None, since: datetime, now: datetime, days: int
) -> Alert | None:
    """An alert when no file has loaded for `days` (counting from activation when none ever did)."""
    reference = last_file_at or since
    if now - reference < timedelta(days=days):
        return None
    when = f"since {reference:%Y-%m-%d %H:%M} UTC"
    return Alert(
        AlertKind.NO_NEW_FILES,
        ingestion_id,
        name,
        f"No new files for '{name}' in {counted(days, 'day')}",
        f"No file has been loaded {when}.",
        "Check that the producer still writes to the source path and that the file pattern matches.",
        severity="warning",
    )

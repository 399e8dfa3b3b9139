"""GET /metrics in the Prometheus text exposition format (version 0.0.4), written by hand: a dozen families read
from the metadata DB (`InstanceMetrics`) need no client library, whose registry is built for counters kept in the
process — numbers that a restart loses and that differ between replicas.

Instance-wide: every tenant's runs count (docs/OPERATIONS-metrics.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from core.domain import IngestionStatus, RunStatus
from core.views import ACTIVE_RUN_STATES, RUN_DURATION_BUCKETS, InstanceMetrics, StatusTotals

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FINISHED_STATES = tuple(s.value for s in RunStatus if s.value not in ACTIVE_RUN_STATES)

Labels = dict[str, str]


@dataclass(slots=True)
class Family:
    """One metric family: its HELP and TYPE lines, then its samples (`name{labels} value`)."""

    name: str
    kind: str
    help: str
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)

    def add(self, value: float, labels: Labels | None = None, suffix: str = "") -> Family:
        self.samples.append((self.name + suffix, labels or {}, value))
        return self

    def lines(self) -> Iterable[str]:
        yield f"# HELP {self.name} {_escape_help(self.help)}"
        yield f"# TYPE {self.name} {self.kind}"
        for name, labels, value in self.samples:
            yield f"{name}{_labels(labels)} {_number(value)}"


def render(metrics: InstanceMetrics) -> str:
    return "".join(f"{line}\n" for family in families(metrics) for line in family.lines())


def families(m: InstanceMetrics) -> list[Family]:
    finished = m.finished()
    found = [
        _by_status("autoloader_runs_total", "counter", "Runs that ended, by status.", m, FINISHED_STATES),
        _by_status("autoloader_runs_in_progress", "gauge", "Runs queued or running now.", m, ACTIVE_RUN_STATES),
        _sum("autoloader_files_total", "Files loaded by runs that ended.", finished, lambda t: t.files),
        _sum("autoloader_records_total", "Records written by runs that ended.", finished, lambda t: t.records),
        _sum("autoloader_bytes_total", "Bytes read from sources by runs that ended.", finished, lambda t: t.bytes_read),
        _sum(
            "autoloader_bytes_written_total",
            "Bytes written to tables by runs that ended.",
            finished,
            lambda t: t.bytes_written,
        ),
        _duration_histogram(m.executed()),
        Family("autoloader_pending_schema_reviews", "gauge", "Schema changes waiting for a review.").add(
            m.pending_schema_reviews
        ),
        _ingestions(m.ingestions),
    ]
    if m.scheduler_lag_seconds is not None:
        lag = Family(
            "autoloader_scheduler_lag_seconds", "gauge", "How late the last scheduled run started after its slot."
        )
        found.append(lag.add(m.scheduler_lag_seconds))
    return found


def _by_status(name: str, kind: str, help: str, m: InstanceMetrics, states: Iterable[str]) -> Family:
    family = Family(name, kind, help)
    for status in states:
        totals = m.by_status.get(status)
        family.add(totals.runs if totals else 0, {"status": status})
    return family


def _sum(name: str, help: str, totals: list[StatusTotals], value: Callable[[StatusTotals], int]) -> Family:
    return Family(name, "counter", help).add(sum(value(t) for t in totals))


def _duration_histogram(executed: list[StatusTotals]) -> Family:
    family = Family("autoloader_run_duration_seconds", "histogram", "How long runs that went through to an end took.")
    for index, bound in enumerate(RUN_DURATION_BUCKETS):
        family.add(sum(t.within[index] for t in executed), {"le": _number(bound)}, "_bucket")
    count = sum(t.timed for t in executed)
    family.add(count, {"le": "+Inf"}, "_bucket")
    family.add(sum(t.seconds for t in executed), suffix="_sum")
    return family.add(count, suffix="_count")


def _ingestions(by_status: dict[str, int]) -> Family:
    family = Family("autoloader_ingestions", "gauge", "Ingestions, by status.")
    for status in IngestionStatus:
        family.add(by_status.get(status.value, 0), {"status": status.value})
    return family


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_escape_label(value)}"' for key, value in labels.items()) + "}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")

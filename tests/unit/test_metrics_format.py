"""The /metrics text: every line of a full snapshot is strictly Prometheus' text exposition format (the reader in
tests/prometheus_text.py refuses anything else), and the histogram adds up."""

from __future__ import annotations

import pytest

from app.metrics import Family, render
from core.views import RUN_DURATION_BUCKETS, InstanceMetrics, StatusTotals
from tests.prometheus_text import parse


def _snapshot() -> InstanceMetrics:
    success = StatusTotals(
        runs=7, files=40, records=10**12, bytes_read=5 * 2**40, bytes_written=2**40, timed=7, seconds=8123.25
    )
    success.within = [min(7, n) for n in range(len(RUN_DURATION_BUCKETS))]
    failed = StatusTotals(runs=2, files=1, timed=2, seconds=0.125, within=[2] * len(RUN_DURATION_BUCKETS))
    running = StatusTotals(runs=1, files=999, timed=1)
    return InstanceMetrics(
        by_status={"success": success, "failed": failed, "running": running, "skipped": StatusTotals(runs=3)},
        ingestions={"active": 5, "needs_review": 1},
        pending_schema_reviews=1,
        scheduler_lag_seconds=0.75,
    )


def test_every_line_is_the_text_format() -> None:
    text = render(_snapshot())
    types, samples = parse(text)
    assert len(text.splitlines()) == len(samples) + 2 * len(types), "only HELP, TYPE and sample lines"
    assert samples[("autoloader_runs_total", (("status", "success"),))] == 7
    assert samples[("autoloader_runs_total", (("status", "skipped"),))] == 3
    assert samples[("autoloader_runs_in_progress", (("status", "running"),))] == 1
    assert samples[("autoloader_files_total", ())] == 41, "a running run's files join when it ends"
    assert samples[("autoloader_bytes_total", ())] == 5 * 2**40
    assert samples[("autoloader_run_duration_seconds_count", ())] == 9, "skipped runs are not timed"
    assert samples[("autoloader_run_duration_seconds_sum", ())] == 8123.375
    assert samples[("autoloader_scheduler_lag_seconds", ())] == 0.75
    assert samples[("autoloader_ingestions", (("status", "draft"),))] == 0


def test_label_values_and_help_are_escaped() -> None:
    family = Family("x_total", "counter", "a \\ help\nwith a line feed").add(1, {"path": 'a "b"\\c\nd'})
    text = "".join(f"{line}\n" for line in family.lines())
    _, samples = parse(text)
    assert samples[("x_total", (("path", 'a \\"b\\"\\\\c\\nd'),))] == 1


@pytest.mark.parametrize(
    "bad",
    [
        "# TYPE x counter\nx 1 2 3\n",
        "x 1\n",
        "# TYPE x counter\nx{a=b} 1\n",
        "# TYPE x counter\nx 1",
        '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
    ],
)
def test_the_reader_refuses_what_is_not_the_format(bad: str) -> None:
    with pytest.raises(AssertionError):
        parse(bad)

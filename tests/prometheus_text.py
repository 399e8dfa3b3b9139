"""A strict reader of the Prometheus text exposition format (0.0.4), for the /metrics tests: every line must be a
HELP, a TYPE or a sample of a family typed before it, and a histogram's buckets must add up."""

from __future__ import annotations

import re

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
LABELS = rf"\{{(?:[a-zA-Z_][a-zA-Z0-9_]*={LABEL_VALUE})(?:,[a-zA-Z_][a-zA-Z0-9_]*={LABEL_VALUE})*\}}"
VALUE = r"(?:[+-]?(?:\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|[+-]Inf|NaN)"
HELP = re.compile(rf"^# HELP ({NAME}) (?:[^\\\n]|\\[\\n])*$")
TYPE = re.compile(rf"^# TYPE ({NAME}) (counter|gauge|histogram|summary|untyped)$")
SAMPLE = re.compile(rf"^({NAME})({LABELS})? ({VALUE})$")
LABEL = re.compile(rf"([a-zA-Z_][a-zA-Z0-9_]*)=({LABEL_VALUE})")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> tuple[dict[str, str], Samples]:
    """(type of each family, value of each sample keyed by name and sorted labels); AssertionError on any line
    that is not strictly the text format."""
    assert text.endswith("\n"), "the exposition must end with a line feed"
    types: dict[str, str] = {}
    samples: Samples = {}
    for number, line in enumerate(text[:-1].split("\n"), start=1):
        if match := TYPE.match(line):
            assert match[1] not in types, f"line {number}: a second TYPE for {match[1]}"
            types[match[1]] = match[2]
        elif not HELP.match(line):
            match = SAMPLE.match(line)
            assert match, f"line {number} is not in the text format: {line!r}"
            name, labels = match[1], tuple(sorted((k, v[1:-1]) for k, v in LABEL.findall(match[2] or "")))
            assert _family(name, types) in types, f"line {number}: {name} has no TYPE before it"
            assert (name, labels) not in samples, f"line {number}: {name}{labels} twice"
            samples[(name, labels)] = float(match[3])
    _check_histograms(types, samples)
    return types, samples


def _family(name: str, types: dict[str, str]) -> str:
    for suffix in HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and types.get(base) == "histogram":
            return base
    return name


def _check_histograms(types: dict[str, str], samples: Samples) -> None:
    for family in (name for name, kind in types.items() if kind == "histogram"):
        in_family = ((labels, value) for (name, labels), value in samples.items() if name == f"{family}_bucket")
        buckets = sorted((float(dict(labels)["le"]), value) for labels, value in in_family)
        counts = [value for _, value in buckets]
        assert counts == sorted(counts), f"{family}: buckets are not cumulative"
        assert buckets and buckets[-1][0] == float("inf"), f"{family}: no +Inf bucket"
        assert buckets[-1][1] == samples[(f"{family}_count", ())], f"{family}: +Inf bucket differs from _count"
        assert (f"{family}_sum", ()) in samples, f"{family}: no _sum"

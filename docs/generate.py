"""Rewrite the parts of the docs made from the code, or check that they are current.

    .venv/bin/python -m docs.generate            # rewrite them
    .venv/bin/python -m docs.generate --check    # exit 1 naming the stale files, change nothing

* docs/operator-guide.md, region `settings`: the settings of app/settings.py (docs/gen/settings_table.py);
* docs/troubleshooting.md, regions `error-codes` and `run-error-kinds`: every error code in the code and what to do
  (docs/gen/error_codes.py, texts in docs/gen/error_guide.py);
* docs/api-reference.md, whole: the app's OpenAPI document (docs/gen/api_reference.py; builds the app, ~10 s).

tests/unit/test_docs_generated.py runs the same comparisons.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from docs.gen.regions import REGENERATE, replace_region

DOCS = Path(__file__).resolve().parent
WHOLE = ""
"""A target's region name when the generator writes the whole file."""


@dataclass(frozen=True, slots=True)
class Target:
    part: str
    path: Path
    region: str
    render: Callable[[], str]


def _settings() -> str:
    from docs.gen.settings_table import settings_table

    return settings_table()


def _error_codes() -> str:
    from docs.gen.error_codes import error_codes_table

    return error_codes_table()


def _run_kinds() -> str:
    from docs.gen.error_codes import run_kinds_table

    return run_kinds_table()


def _api() -> str:
    from docs.gen.api_reference import api_reference, openapi_document

    return api_reference(openapi_document())


TARGETS = (
    Target("settings", DOCS / "operator-guide.md", "settings", _settings),
    Target("errors", DOCS / "troubleshooting.md", "error-codes", _error_codes),
    Target("errors", DOCS / "troubleshooting.md", "run-error-kinds", _run_kinds),
    Target("api", DOCS / "api-reference.md", WHOLE, _api),
)
PARTS = tuple(dict.fromkeys(t.part for t in TARGETS))


def expected_text(target: Target, current: str) -> str:
    """The file's text with this target's part as the code says it should be."""
    body = target.render()
    return body if target.region == WHOLE else replace_region(current, target.region, body)


def stale_files(parts: tuple[str, ...] = PARTS, write: bool = False) -> list[Path]:
    """The files whose generated parts differ from the code (rewritten when `write`)."""
    before: dict[Path, str] = {}
    after: dict[Path, str] = {}
    for target in (t for t in TARGETS if t.part in parts):
        if target.path not in before:
            before[target.path] = target.path.read_text() if target.path.exists() else ""
        after[target.path] = expected_text(target, after.get(target.path, before[target.path]))
    stale = [path for path in after if after[path] != before[path]]
    if write:
        for path in stale:
            path.write_text(after[path])
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m docs.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", help=f"only these ({', '.join(PARTS)}); default all")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a file is stale")
    args = parser.parse_args(argv)
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}: choose from {', '.join(PARTS)}")
    parts = tuple(args.parts) or PARTS
    stale = stale_files(parts, write=not args.check)
    for path in stale:
        shown = path.relative_to(DOCS.parent)
        print(f"{shown} is stale: run `{REGENERATE}`" if args.check else f"rewrote {shown}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())

"""The docs' generated parts match the code (docs/generate.py), and the docs' links lead somewhere.

A failure names the command that rewrites the stale part: `.venv/bin/python -m docs.generate`.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from docs.gen.error_codes import error_codes_table, run_kinds_table, undescribed
from docs.gen.regions import REGENERATE, read_region
from docs.gen.settings_table import UNDESCRIBED, setting_docs, settings_table
from tests.conftest import clean_env

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
STALE = f"is stale: run `{REGENERATE}` and commit the result"


def _region(page: str, name: str) -> str | None:
    return read_region((DOCS / page).read_text(), name)


def test_the_settings_table_lists_every_setting_as_the_code_declares_it() -> None:
    assert _region("operator-guide.md", "settings") == settings_table(), f"docs/operator-guide.md settings {STALE}"


def test_every_setting_has_a_description() -> None:
    missing = [d.env for d in setting_docs() if d.description == UNDESCRIBED]
    assert not missing, f"give these a Field(description=...) in app/settings.py: {missing}"


def test_the_error_codes_page_lists_every_code_in_the_code() -> None:
    assert _region("troubleshooting.md", "error-codes") == error_codes_table(), f"docs/troubleshooting.md {STALE}"
    assert _region("troubleshooting.md", "run-error-kinds") == run_kinds_table(), f"docs/troubleshooting.md {STALE}"


def test_every_error_code_says_what_it_means_and_what_to_do() -> None:
    assert undescribed() == [], "describe these in docs/gen/error_guide.py, then run " + REGENERATE


@pytest.mark.slow
def test_the_api_reference_is_generated_from_the_current_openapi_document() -> None:
    """In a process of its own: the generator builds the app NiceGUI serves, which is one per process (~10 s)."""
    done = subprocess.run(
        [sys.executable, "-m", "docs.generate", "--check", "api"],
        cwd=ROOT,
        env={k: v for k, v in clean_env().items() if not k.startswith("AUTOLOADER_")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"docs/api-reference.md {STALE}\n{done.stdout}{done.stderr[-2000:]}"


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_links_between_the_docs_lead_to_files_that_exist() -> None:
    pages = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
    broken = [
        f"{page.relative_to(ROOT)}: {target}"
        for page in pages
        for target in LINK.findall(page.read_text())
        if "://" not in target and not target.startswith("mailto:") and not (page.parent / target).exists()
    ]
    assert not broken, broken


def test_the_docs_index_links_every_page() -> None:
    index = (DOCS / "README.md").read_text()
    pages = [p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if p.name != "README.md"]
    assert [p for p in pages if f"({p})" not in index] == []

"""The error codes the code can answer with, found in the code itself (so a new one cannot be left out of the docs):

* every class under core/, app/ and components/ that sets `code = "..."` — the typed errors (core/errors.py and
  the ones beside their backends), imported to read their HTTP status and whether they are retried;
* the codes the API's own handlers write (app/api/errors.py): FastAPI's refusals, validation, internal errors;
* the `kind` of the errors a run records (`RunError(kind="...")`), shown in the run history.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from docs.gen.error_guide import CODE_GUIDE, RUN_KIND_GUIDE, Guide
from docs.gen.regions import cell

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "app", "components")
API_ERRORS = ROOT / "app" / "api" / "errors.py"
NOT_DESCRIBED = "NOT DESCRIBED: add it to docs/gen/error_guide.py"


@dataclass(slots=True)
class ErrorCode:
    code: str
    http_status: int
    retried: bool
    raised_as: list[str] = field(default_factory=list)


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            yield module, ast.parse(path.read_text(), str(path))


def _class_code(node: ast.ClassDef) -> str | None:
    for statement in node.body:
        if (
            isinstance(statement, ast.Assign)
            and [getattr(t, "id", None) for t in statement.targets] == ["code"]
            and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str)
        ):
            return statement.value.value
    return None


def typed_errors() -> list[ErrorCode]:
    """One entry per code, from the error classes that declare one (several classes may share a code)."""
    from core.errors import AutoloaderError

    found: dict[str, ErrorCode] = {}
    for module, tree in _modules():
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef) or _class_code(node) is None:
                continue
            cls = getattr(importlib.import_module(module), node.name)
            if not (isinstance(cls, type) and issubclass(cls, AutoloaderError)):
                continue
            entry = found.setdefault(cls.code, ErrorCode(cls.code, cls.http_status, cls.transient))
            entry.raised_as.append(f"`{cls.__name__}` ({module})")
    return list(found.values())


def _literal_codes(function: ast.AST) -> tuple[list[str], int | None]:
    """The `"code": "..."` literals of a handler and the literal `status_code=` of its JSONResponse."""
    codes, status = [], None
    for node in ast.walk(function):
        if isinstance(node, ast.Dict):
            codes += [
                value.value
                for key, value in zip(node.keys, node.values, strict=True)
                if isinstance(key, ast.Constant) and key.value == "code"
                if isinstance(value, ast.Constant) and isinstance(value.value, str)
            ]
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "JSONResponse":
            status = next(
                (
                    k.value.value
                    for k in node.keywords
                    if k.arg == "status_code" and isinstance(k.value, ast.Constant) and isinstance(k.value.value, int)
                ),
                status,
            )
    return codes, status


def api_handler_codes() -> dict[str, int]:
    """Codes written by the API's handlers, with their status: FastAPI's refusals (`_HTTP_CODES`, by status) and the
    literal `"code": "..."` of the handlers that answer with a fixed status (validation, internal error)."""
    from app.api.errors import _HTTP_CODES

    codes = {code: status for status, code in _HTTP_CODES.items()}
    for node in ast.walk(ast.parse(API_ERRORS.read_text())):
        functions = ast.AsyncFunctionDef | ast.FunctionDef
        if isinstance(node, functions) and not any(isinstance(n, functions) for n in ast.walk(node) if n is not node):
            literals, status = _literal_codes(node)  # the handlers themselves, not the function defining them
            for code in literals:
                codes.setdefault(code, status or 500)
    return codes


def _run_kinds_in(function: ast.AST) -> set[str]:
    kinds: set[str] = set()
    names: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "RunError":
            for keyword in node.keywords:
                if keyword.arg != "kind":
                    continue
                if isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str):
                    kinds.add(keyword.value.value)
                elif isinstance(keyword.value, ast.Name):
                    names.add(keyword.value.id)
    for node in ast.walk(function):  # `kind = "file_vanished"` ... `RunError(kind=kind)`
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            and any(getattr(t, "id", None) in names for t in node.targets)
        ):
            kinds.add(node.value.value)
    return kinds


def run_error_kinds() -> list[str]:
    """The literal kinds of `RunError`s (a run's errors also carry the code of a typed error as their kind)."""
    kinds: set[str] = set()
    for _, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Module):
                kinds |= _run_kinds_in(node)
    return sorted(kinds)


def all_codes() -> list[ErrorCode]:
    """Typed errors and API handler codes together, by code (not_found is both)."""
    codes = {e.code: e for e in typed_errors()}
    for code, status in api_handler_codes().items():
        entry = codes.setdefault(code, ErrorCode(code, status, False))
        entry.raised_as.append("API handler (app/api/errors.py)")
    return sorted(codes.values(), key=lambda e: (e.http_status, e.code))


def _guide(code: str, guides: dict[str, Guide]) -> Guide:
    return guides.get(code, Guide(NOT_DESCRIBED, NOT_DESCRIBED))


def error_codes_table(codes: list[ErrorCode] | None = None) -> str:
    rows = codes if codes is not None else all_codes()
    lines = ["| Code | HTTP | Retried | What it means | What to do | Raised as |", "|---|---|---|---|---|---|"]
    for e in rows:
        guide = _guide(e.code, CODE_GUIDE)
        retried = "yes" if e.retried else "no"
        lines.append(
            f"| `{e.code}` | {e.http_status} | {retried} | {cell(guide.meaning)} | {cell(guide.action)} | "
            f"{cell(', '.join(e.raised_as))} |"
        )
    return "\n".join(lines) + "\n"


def run_kinds_table(kinds: list[str] | None = None) -> str:
    rows = kinds if kinds is not None else run_error_kinds()
    lines = ["| Kind | What it means | What to do |", "|---|---|---|"]
    for kind in rows:
        guide = _guide(kind, RUN_KIND_GUIDE)
        lines.append(f"| `{kind}` | {cell(guide.meaning)} | {cell(guide.action)} |")
    return "\n".join(lines) + "\n"


def undescribed() -> list[str]:
    """Codes and run error kinds found in the code that docs/gen/error_guide.py does not explain."""
    missing = [e.code for e in all_codes() if e.code not in CODE_GUIDE]
    return missing + [f"run error kind {k}" for k in run_error_kinds() if k not in RUN_KIND_GUIDE]

"""The layers' rules, checked on the source: dependencies point inward and no module imports itself in a circle.

Every import counts: the lazy ones inside functions and those under `if TYPE_CHECKING:` too (a lazy or a type-only
import is still a dependency, and two modules that need each other's types are one unit in two files).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "components", "app")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def _imported_names(tree: ast.AST, module: str, is_package: bool) -> list[str]:
    """Every module name imported (absolute; relative imports resolved)."""
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.extend(f"{base}.{alias.name}" for alias in node.names)
            names.append(base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module an imported name lives in (a name may be a module or a symbol of one)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        targets = {_resolve(n, modules) for n in _imported_names(tree, module, path.name == "__init__.py")}
        graph[module] = {t for t in targets if t is not None and t != module and not module.startswith(f"{t}.")}
    return graph


def external_imports(prefix: str) -> dict[str, set[str]]:
    """Top-level package names imported by each module under `prefix`."""
    found: dict[str, set[str]] = {}
    for module, path in _modules().items():
        if module == prefix or module.startswith(f"{prefix}."):
            tree = ast.parse(path.read_text(), str(path))
            found[module] = {n.split(".")[0] for n in _imported_names(tree, module, path.name == "__init__.py") if n}
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("core", {"app", "components", "nicegui", "fastapi", "sqlmodel", "starlette"}),
        ("components", {"app"}),
    ],
)
def test_dependencies_point_inward(layer: str, forbidden: set[str]) -> None:
    offenders = {module: sorted(names & forbidden) for module, names in external_imports(layer).items()}
    assert {m: names for m, names in offenders.items() if names} == {}


def test_only_the_composition_root_builds_the_services() -> None:
    """The runner, the scheduler, the services and the read side are constructed in app/bootstrap.py only."""
    built = re.compile(r"\b(Runner|Scheduler|IngestionService|RunService|SchemaReviewService|Views|Queries)\(")
    builders = {
        module for module, path in _modules().items() if module.startswith("app") and built.search(path.read_text())
    }
    assert builders <= {"app.bootstrap"}, builders

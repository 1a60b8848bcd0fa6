"""The import graph of a package, read with ``ast`` (nothing is imported or run).

Every ``import`` and ``from … import`` counts, wherever it is: module level,
inside a function (lazy imports), under ``if TYPE_CHECKING:``. Relative imports
are resolved against the importing module; ``from pkg import name`` counts as an
import of ``pkg.name`` when that is a module of the tree.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ROOT", "Edge", "cycles", "module_imports", "package_edges", "unit_of"]

#: The name the package's own ``__init__.py`` gets as a unit.
ROOT = "<root>"


@dataclass(frozen=True)
class Edge:
    """One import, from a unit to another unit of the same tree."""

    source: str  # importing unit (top-level package or module under the root)
    target: str  # imported unit
    where: str  # "confide/execution/_worker.py:26" (relative to the source root)


def _module_name(path: Path, src: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(src).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def module_imports(src: Path, package: str,
                   exclude: Iterable[str] = ()) -> dict[str, list[tuple[str, int]]]:
    """``{module: [(imported module, line), ...]}`` for every module of ``src/package``.

    Only imports of ``package`` itself are kept. Directories named in ``exclude``
    (e.g. generated code) are skipped.
    """
    skip = set(exclude)
    files = [p for p in sorted((src / package).rglob("*.py")) if not skip & set(p.parts)]
    known = {_module_name(p, src)[0] for p in files}
    graph: dict[str, list[tuple[str, int]]] = {}
    for path in files:
        module, is_package = _module_name(path, src)
        here = module.split(".") if is_package else module.split(".")[:-1]
        found: list[tuple[str, int]] = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                found += [(a.name, node.lineno) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[: len(here) - (node.level - 1)]
                    parent = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    parent = node.module or ""
                for alias in node.names:
                    child = f"{parent}.{alias.name}"
                    found.append((child if child in known else parent, node.lineno))
        graph[module] = [(m, line) for m, line in found
                         if m == package or m.startswith(package + ".")]
    return graph


def unit_of(module: str) -> str:
    """The top-level unit a module belongs to: ``confide.services.audit._log`` → ``services``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def package_edges(src: Path, package: str, exclude: Iterable[str] = ()) -> list[Edge]:
    """Imports between different top-level units, one per (source, target, file, line)."""
    edges = []
    for module, imports in module_imports(src, package, exclude).items():
        path = src / Path(*module.split("."))
        path = path / "__init__.py" if path.is_dir() else path.with_name(path.name + ".py")
        shown = str(path.relative_to(src))
        for target, line in imports:
            a, b = unit_of(module), unit_of(target)
            if a != b:
                edges.append(Edge(a, b, f"{shown}:{line}"))
    return edges


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    nodes = set(graph) | {t for ts in graph.values() for t in ts}

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return sorted(found)

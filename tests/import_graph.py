"""The ``tickerserve`` package's import graph, read statically from its source.

An edge ``a -> b`` is a ``tickerserve`` module ``a`` imports when it runs: at module level or
inside a function (imported on first use still ships and still layers), but not under
``if TYPE_CHECKING:`` (annotations only). ``from pkg import name`` is an edge to ``pkg.name``
when that is a module, else to ``pkg``; every import of ``a.b.c`` also runs ``a`` and ``a.b``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "lambda_src"
PACKAGE = "tickerserve"


@cache
def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__.py``)."""
    found = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from (n for child in node.orelse for n in _import_nodes_of(child))
            continue
        yield from _import_nodes_of(node)


def _import_nodes_of(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    else:
        yield from _import_nodes(node)


def _with_parents(name: str) -> Iterator[str]:
    parts = name.split(".")
    for n in range(1, len(parts) + 1):
        yield ".".join(parts[:n])


@cache
def imports_of(module: str) -> frozenset[str]:
    """The package's modules ``module`` imports when it runs (parents included)."""
    path = modules()[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules() else source
                for alias in node.names
            ]
        for target in targets:
            if target.split(".")[0] == PACKAGE:
                found.update(n for n in _with_parents(target) if n in modules())
    found.discard(module)
    return frozenset(found)


def closure(roots: Iterable[str]) -> set[str]:
    """Every module that importing ``roots`` runs (the roots' parent packages included)."""
    seen: set[str] = set()
    todo = [p for root in roots for p in _with_parents(root)]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(imports_of(module))
    return seen


def graph() -> dict[str, set[str]]:
    """Each module's dependencies. A module's parents run before it, not because of it: an
    edge to its own parent package (``members.lightgbm`` -> ``members``) is no dependency."""
    return {
        module: {t for t in imports_of(module) if not module.startswith(t + ".")}
        for module in modules()
    }


def cycles(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
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
            if len(component) > 1 or node in edges.get(node, ()):
                found.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def layer_of(module: str, layers: Sequence[str]) -> int | None:
    """The index of ``module``'s layer (its first name under the package); the package's own
    ``__init__`` sits below every layer (-1); None when no layer is declared for it."""
    parts = module.split(".")
    if len(parts) == 1:
        return -1
    return layers.index(parts[1]) if parts[1] in layers else None


def upward_imports(
    edges: Mapping[str, Iterable[str]], layers: Sequence[str]
) -> list[tuple[str, str]]:
    """Every ``(importer, imported)`` where the imported module's layer is above the
    importer's."""
    found = []
    for module, targets in sorted(edges.items()):
        own = layer_of(module, layers)
        for target in sorted(targets):
            theirs = layer_of(target, layers)
            if own is not None and theirs is not None and theirs > own:
                found.append((module, target))
    return found

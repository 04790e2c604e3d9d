"""Every module of the package imports, and no two modules import each other, directly or in a ring.

The import graph is read from the source (every ``import`` and ``from ... import`` statement,
including the ones inside functions), so a cycle is found even where a deferred import would
hide it at run time.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import anolearn

ROOT = Path(anolearn.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports_of(name: str, path: Path) -> set[str]:
    """The anolearn modules ``name`` (at ``path``) imports: a package's ``__init__`` when it
    imports the package, the submodule when it imports one from its package."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package, up level - 1 packages
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            submodules = {f"{target}.{alias.name}" for alias in node.names} & MODULES.keys()
            found |= submodules or {target}
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read_correctly():
    assert "anolearn.forge.draws" in GRAPH["anolearn.forge.augment"]  # from .draws import ...
    assert "anolearn.imageops" in GRAPH["anolearn.forge.augment"]  # from ..imageops import ...
    assert "anolearn.forge.augment" in GRAPH["anolearn.forge.fast.chains"]  # from .. import augment as A
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle():
    assert cycles(GRAPH) == []


def test_the_plain_forger_does_not_need_the_fast_engine():
    # everything the plain DRAEM forger runs on stays outside anolearn.forge.fast
    for name in ("anolearn.forge.augment", "anolearn.forge.color", "anolearn.forge.geometry",
                 "anolearn.forge.perlin", "anolearn.forge.sources", "anolearn.forge.draws"):
        assert not any(m.startswith("anolearn.forge.fast") for m in GRAPH[name]), name


@pytest.mark.parametrize("name", sorted(m for m in MODULES if not m.endswith("__main__")))
def test_every_module_imports(name):
    importlib.import_module(name)

"""The layering of docs/ARCHITECTURE.md, checked on the import graph: floors, stages apart, no cycles.

Every import counts, also those inside functions (a lazy import is still a dependency). A new module
must be given a floor here, which is the point: its place in the design is decided, not drifted into.
"""

from __future__ import annotations

import ast
from pathlib import Path

import facetwin

PACKAGE = Path(facetwin.__file__).parent

# Longest prefix wins. Each floor imports only its own or lower floors (floor 1: the exception type only).
FLOORS = {
    "facetwin.errors": 1, "facetwin.progress": 1, "facetwin.devices": 1, "facetwin.background": 1,
    "facetwin.prefetch": 1, "facetwin.quiet": 1, "facetwin.arrays": 1, "facetwin.registry": 1, "facetwin.atomic": 1,
    "facetwin.digest": 1, "facetwin.options": 1, "facetwin.demo_data": 1,
    "facetwin.media": 2, "facetwin.faces": 2, "facetwin.models": 2,
    "facetwin.faceset": 3, "facetwin.facecache": 3, "facetwin.facepool": 3, "facetwin.split": 3, "facetwin.checkpoint": 3,
    "facetwin.modeldir": 3, "facetwin.swapper": 3, "facetwin.scoring": 3, "facetwin.provenance": 3,
    "facetwin.safety": 3, "facetwin.sheets": 3, "facetwin.curves": 3, "facetwin.identities": 3, "facetwin.curation": 3,
    "facetwin.choice": 3,
    "facetwin.extract": 4, "facetwin.train": 4, "facetwin.convert": 4, "facetwin.evaluate": 4,
    "facetwin.cli": 5, "facetwin.demo": 5, "facetwin.studio": 5, "facetwin.pipeline": 5, "facetwin.__main__": 5,
    "facetwin": 1,  # the package itself: its version, nothing else (matches only itself)
}  # fmt: skip
STAGES = ("facetwin.extract", "facetwin.train", "facetwin.convert", "facetwin.evaluate")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> set[str]:
    """facetwin modules that ``path`` imports (any depth, any place), resolved to module names."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            for alias in node.names:  # "from facetwin.x import y": y may itself be a module
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {name for name in found if name == "facetwin" or name.startswith("facetwin.")}


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: _imports(path, name) & set(MODULES) for name, path in MODULES.items()}


def floor(module: str) -> int:
    matches = [p for p in FLOORS if module == p or (p != "facetwin" and module.startswith(p + "."))]
    assert matches, f"{module} has no floor in tests/test_architecture.py (and docs/ARCHITECTURE.md): give it one"
    return FLOORS[max(matches, key=len)]


def stage(module: str) -> str | None:
    return next((s for s in STAGES if module == s or module.startswith(s + ".")), None)


def test_every_module_has_a_floor_and_imports_only_below() -> None:
    wrong = [f"{m} (floor {floor(m)}) imports {d} (floor {floor(d)})"
             for m, deps in GRAPH.items() for d in deps if floor(d) > floor(m)]  # fmt: skip
    assert not wrong, "\n".join(wrong)


def test_stages_do_not_import_each_other() -> None:
    crossing = [f"{m} imports {d}" for m, deps in GRAPH.items() for d in deps
                if stage(m) and stage(d) and stage(m) != stage(d)]  # fmt: skip
    assert not crossing, "\n".join(crossing)


def test_no_import_cycles() -> None:
    """Tarjan's strongly connected components over the whole package: every one must be a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for dep in GRAPH[node]:
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert not cycles, f"import cycles: {cycles}"


def test_the_graph_is_real() -> None:
    """The checks above would pass vacuously on an empty graph."""
    assert len(MODULES) > 40 and "facetwin.modeldir" in GRAPH["facetwin.swapper"]
    assert "facetwin.train.trainer" in GRAPH["facetwin.cli"], "lazy imports inside functions count"

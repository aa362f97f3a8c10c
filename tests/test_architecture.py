"""The package's imports flow one way: no cycles, nothing pointing back up, nothing hidden in a function.

The layers are those of ``docs/architecture.md``: a module may import only from layers below its
own. Imports of the package's own modules sit at the top of a module, never inside a function
(where they would hide a cycle). Two exceptions, both at the top of the graph: the entry points
``sim`` (PEP 562: ``sim.run`` imports the pipeline when first used) and ``sim.cli`` (each
subcommand imports what it runs) defer package imports into functions so that ``import sim`` and
``lfrsim validate`` load nothing they do not use; those imports count as edges here, so they are
checked for direction and cycles like any other. Heavy third-party libraries off the path every
command takes (``ALLOWED_IN_FUNCTIONS``) may be imported where they are used.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sim"

# lowest first; a module imports only from strictly lower layers
LAYERS = (
    ("sim.groups", "sim.errors", "sim.seeds"),
    ("sim.data", "sim.examples"),
    ("sim.grid",),
    ("sim.config",),
    ("sim.draws",),
    ("sim.scores",),
    ("sim.watchlist", "sim.crowd"),
    ("sim.search",),
    ("sim.review",),
    ("sim.replicate", "sim.records"),
    ("sim.likelihood", "sim.cost"),
    ("sim.inference",),
    ("sim.checks",),
    ("sim.calibrate",),
    ("sim.posterior", "sim.metrics", "sim.reference", "sim.calibration_report"),
    ("sim.sweep", "sim.results", "sim.assumptions"),
    ("sim.plot",),
    ("sim.report", "sim.sensitivity", "sim.replay"),
    ("sim.pipeline", "sim.explain"),
    ("sim.cli", "sim.testing.strategies"),
    ("sim", "sim.__main__", "sim.testing"),
)
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}
# what `lfrsim validate` must not pay for: results tables and files (pandas, pyarrow), intervals
# (scipy.stats), figures (matplotlib), review (simpy), the calibration's samplers and diagnostics
# (arviz, dynesty, emcee), sensitivity (SALib), executors (dask) and the terminal's tables (rich)
ALLOWED_IN_FUNCTIONS = {"dask", "matplotlib", "scipy", "pandas", "pyarrow", "simpy", "arviz", "dynesty",
                        "emcee", "SALib", "rich"}
# entry points that import the package's modules where they are used (counted as edges)
DEFERRING = {"sim", "sim.cli"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, path: Path, node: ast.Import | ast.ImportFrom, known: set[str]) -> list[str]:
    """The package modules an import statement names."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in known]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    if node.level:
        base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    found = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
    return found or ([base] if base in known else [])


def graph() -> tuple[dict[str, set[str]], list[str]]:
    """Import edges, and every import of the package found inside a function outside ``DEFERRING``."""
    mods = modules()
    known = set(mods)
    edges: dict[str, set[str]] = {m: set() for m in mods}
    hidden: list[str] = []
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        functions = [f for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
        in_functions = {id(n) for f in functions for n in ast.walk(f)
                        if isinstance(n, (ast.Import, ast.ImportFrom))}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            targets = [t for t in imported(name, path, node, known)
                       if t != name and not name.startswith(t + ".")]
            if id(node) in in_functions and name in DEFERRING:
                edges[name].update(t for t in targets if t != "sim")
                continue
            if id(node) in in_functions:
                if targets:
                    hidden.append(f"{name} imports {', '.join(targets)} inside a function")
                elif isinstance(node, ast.ImportFrom) and not node.level:
                    top = (node.module or "").split(".")[0]
                    if top not in ALLOWED_IN_FUNCTIONS and name != "sim.testing.strategies":
                        hidden.append(f"{name} imports {node.module} inside a function")
                continue
            edges[name].update(t for t in targets if t != "sim")
    return edges, hidden


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer():
    assert sorted(set(modules()) - set(LAYER)) == []


def test_no_import_cycles():
    assert cycles(graph()[0]) == []


def test_imports_point_down_the_data_flow():
    edges, _ = graph()
    upward = [f"{a} -> {b}" for a, targets in edges.items() for b in targets if LAYER[b] >= LAYER[a]]
    assert upward == []


def test_no_package_import_hidden_in_a_function():
    assert graph()[1] == []


def test_the_checker_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", ["sim.run", "sim.validate"])
def test_no_function_shadows_a_module(name):
    import sim

    assert name not in modules()
    assert callable(sim.run)

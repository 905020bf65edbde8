"""The package's layering: no import cycle among rlnas/ modules, lazy imports inside functions counted."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_CHECK = ROOT.parent / "shared" / "tools" / "import_cycles.py"
#: The layers of docs/architecture.md, bottom up: a module may import its own layer and those below.
LAYERS = (
    ("rlnas.spaces", "rlnas.data", "rlnas.utils", "rlnas.registration"),
    ("rlnas.supernet", "rlnas.tasks", "rlnas.benchmarks"),
    ("rlnas.costs", "rlnas.controllers", "rlnas.env"),
    ("rlnas.evaluators", "rlnas.rewards"),
    ("rlnas.search", "rlnas.trials"),
    ("rlnas.retrain", "rlnas.export", "rlnas.predict"),
    ("rlnas.config", "rlnas.__main__", "rlnas.sweep", "rlnas"),
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """rlnas module -> the rlnas modules it imports anywhere in its file (a package import counts its __init__)."""
    files = {_module_name(p): p for p in (ROOT / "rlnas").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(
                        package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                    )
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_among_rlnas_modules():
    cycles = _cycles(_import_graph())
    assert not cycles, "import cycles (move the shared piece down a layer): " + "; ".join(map(" <-> ".join, cycles))


def _layer(module: str) -> int | None:
    """The layer of ``module``: that of the longest prefix of it in :data:`LAYERS`."""
    best: tuple[int, int] | None = None
    for level, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (level, len(prefix))
    return best[0] if best else None


def test_no_import_climbs_a_layer():
    graph = _import_graph()
    unplaced = sorted(m for m in graph if _layer(m) is None)
    assert not unplaced, f"modules in no layer (add them to LAYERS and docs/architecture.md): {unplaced}"
    climbs = [f"{m} -> {d}" for m, deps in sorted(graph.items()) for d in sorted(deps) if _layer(d) > _layer(m)]
    assert not climbs, "imports that climb a layer (move the shared piece down): " + "; ".join(climbs)


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.skipif(not SHARED_CHECK.is_file(), reason="the shared import-cycle tool is not beside this checkout")
def test_the_shared_import_cycle_tool_agrees():
    result = subprocess.run([sys.executable, str(SHARED_CHECK), "rlnas"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and "no cycle" in result.stdout + result.stderr, result.stdout + result.stderr

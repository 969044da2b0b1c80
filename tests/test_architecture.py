"""The package's shape: every module imports in a fresh interpreter, imports point one way down the
pipeline, and no module cycle exists (docs/architecture.md draws the layers)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "disfer"

# The layers, lowest first. A module may import its own layer and the layers below it, never above.
LAYERS = [
    {"disfer", "disfer.emotions", "disfer.errors", "disfer.images", "disfer.progress", "disfer.store",
     "disfer.runs", "disfer.access", "disfer.outfiles", "disfer.hosted", "disfer.csvio"},
    {"disfer.data"},
    {"disfer.ledger"},
    {"disfer.models"},
    {"disfer.analysis"},
    {"disfer.curation", "disfer.charts"},
    {"disfer.finetune"},
    {"disfer.demo"},
    {"disfer.commands", "disfer.cli", "disfer.launch", "disfer.uploads"},
]


def module_names() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def layer_of(module: str) -> int:
    for rank, members in enumerate(LAYERS):
        if module in members:
            return rank
    for rank, members in enumerate(LAYERS):
        if any(module.startswith(m + ".") for m in members if m != "disfer"):
            return rank
    raise AssertionError(f"{module} is in no layer of tests/test_architecture.py: place it")


def imports_of(module: str, known: set[str]) -> set[str]:
    """Our modules that `module` imports anywhere in its file (inside functions too)."""
    path = PACKAGE.parent / Path(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "disfer"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "disfer":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
    return {m for m in found if m != module}


def test_every_module_imports_in_a_fresh_interpreter():
    code = ("import importlib, sys\n"
            f"for name in {module_names()!r}:\n"
            "    importlib.import_module(name)\n"
            "print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_imports_point_down_the_pipeline():
    known = set(module_names())
    upward = []
    for module in known:
        for target in imports_of(module, known):
            if module == "disfer" or module.startswith(target + "."):
                continue  # a package's own __init__ re-exports; a module may read its package
            if layer_of(target) > layer_of(module):
                upward.append(f"{module} -> {target}")
    assert not upward, "imports pointing up the pipeline:\n" + "\n".join(sorted(upward))


def test_no_import_cycle_between_modules():
    known = set(module_names())
    graph = {m: {t for t in imports_of(m, known) if t in known and not m.startswith(t + ".")} for m in known}
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, path: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle.extend(path[path.index(nxt):] + [node, nxt] if nxt in path else [node, nxt])
                return True
            if state.get(nxt) is None and visit(nxt, path + [node]):
                return True
        state[node] = 2
        return False

    for module in sorted(graph):
        if state.get(module) is None and visit(module, []):
            break
    assert not cycle, " -> ".join(cycle)


def test_the_dashboard_sets_openmp_to_sleep_before_anything_can_import_torch():
    """streamlit_app.py sets OMP_WAIT_POLICY=PASSIVE before its first import other than os: OpenMP
    reads it once, when torch loads (benchmarks/bench_saliency.py measures why)."""
    tree = ast.parse((PACKAGE.parent / "streamlit_app.py").read_text())
    body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    setting = next(i for i, n in enumerate(body) if "OMP_WAIT_POLICY" in ast.unparse(n))
    assert ast.unparse(body[setting]) == "os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')"
    before = [ast.unparse(n) for n in body[:setting]]
    assert before == ["import os"]

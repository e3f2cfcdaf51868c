"""The layout stays the one docs/architecture.md describes: imports run downward (pages → ui → core →
db), no module imports another that imports it back, logic never imports Streamlit, pages/ holds
only pages, and no module outgrows one sitting. Read from the source with `ast`, nothing imported."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"app": 4, "pages": 3, "ui": 2, "core": 1, "db": 0}
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    files = [ROOT / "app.py"] + [p for layer in ("pages", "ui", "core", "db") for p in (ROOT / layer).rglob("*.py")]
    return {module_name(p): p for p in files}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules that `path` imports anywhere in its body (lazy imports inside functions count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from core.results import tables` imports the module core.results.tables
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names
            ]
        else:
            continue
        found.update(n for n in names if n.split(".")[0] in LAYERS and n in modules)
    return found


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(path, modules) - {name} for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
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
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_imports_run_downward():
    upward = [
        f"{a} imports {b}"
        for a, targets in graph().items()
        for b in targets
        if LAYERS[b.split(".")[0]] > LAYERS[a.split(".")[0]]
    ]
    assert upward == []


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_the_checks_see_a_cycle_and_an_upward_import():
    # the checks themselves, on a made-up graph: a cycle through three modules, and db reaching up
    edges = {"core.a": {"core.b"}, "core.b": {"core.c"}, "core.c": {"core.a"}, "db.x": {"ui.y"}, "ui.y": set()}
    assert cycles(edges) == [["core.a", "core.b", "core.c"]]
    assert any(LAYERS[b.split(".")[0]] > LAYERS[a.split(".")[0]] for a, bs in edges.items() for b in bs)


def test_the_graph_is_read_from_the_real_tree():
    edges = graph()
    assert "core.generation.engine" in edges["core.generation.job"]
    assert "db.generation.runs" in edges["core.generation.runs"]
    assert "core.training.finetune" in edges["core.training.job"]  # a lazy import inside a function


def test_logic_never_imports_streamlit():
    offenders = []
    for layer in ("core", "db"):
        for path in (ROOT / layer).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                if any(n == "streamlit" or n.startswith("streamlit.") for n in names):
                    offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_pages_holds_only_pages():
    app = (ROOT / "app.py").read_text()
    scripts = [p.name for p in (ROOT / "pages").glob("*.py") if p.name != "__init__.py"]
    assert scripts and [s for s in scripts if f'"pages/{s}"' not in app] == []


def test_no_module_outgrows_one_sitting():
    long = {
        str(p.relative_to(ROOT)): n
        for layer in ("core", "db", "pages", "ui")
        for p in (ROOT / layer).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_every_package_says_what_it_does():
    for init in [*(ROOT / "core").rglob("__init__.py"), *(ROOT / "db").rglob("__init__.py"), ROOT / "ui/__init__.py"]:
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc) > 60, f"{init.relative_to(ROOT)} needs a docstring saying what the package does"

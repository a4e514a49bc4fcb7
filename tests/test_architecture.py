"""The layering of ``src/taintline`` (see docs/architecture.md): imports point down, no cycles,
no long file without a reason.

Each failure names the module and what to do. A new top-level module or package gets a line in
:data:`LAYERS`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1] / "src" / "taintline"

#: Layer of each top-level module or package of ``taintline``: a module may import its own
#: layer and the layers below, never above. The ``demo`` package (one module per stage) sits
#: above the stages it exercises; ``cli`` on top.
LAYERS: dict[str, int] = {
    # 0: records, errors, limits, the finding-kind catalogue
    "taintline": 0,
    "model": 0,
    "errors": 0,
    "limits": 0,
    "kinds": 0,
    "terminal": 0,
    "compressed": 0,  # decompressing readers' input (stdlib and zstandard only)
    "csvsafe": 0,  # the one CSV writer (spreadsheet formula injection neutralised)
    "lazy": 0,  # modules imported on first use (pyarrow: start-up)
    "cachedir": 0,  # the user's cache folder (compiled rules, pack rows)
    # 1: the case store and what has no stage (test-file builders, Spark session)
    "case": 1,
    "migrations": 1,
    "sparklocal": 1,
    "testing": 4,  # builders may use a stage's encoders (signing uses scan.ctl)
    # 2: intel (every stage reads indicators) and record <-> dict conversion
    "interchange": 2,
    "intel": 2,
    # 3: the stages that look at the world
    "scan": 3,
    "hunt": 3,
    "graph": 3,
    # 4: stages built on them
    "release": 4,
    "eol": 4,
    # 5: rendering
    "report": 5,
    # 6: the demo story (all stages)
    "demo": 6,
    # 7: the command line
    "cli": 7,
    "__main__": 7,
}
LONG = 520
MARKER = "Long file:"
#: Files that grew past LONG while the architecture step landed; each is to be split or given
#: a "Long file:" reason by its stage's owner (listed in issue 10's closing note).
KNOWN_LONG = {}


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _group(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "taintline"


def _imports(path: Path, *, module_scope: bool) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if module_scope and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if (
                module_scope
                and isinstance(child, ast.If)
                and "TYPE_CHECKING" in ast.unparse(child.test)
            ):
                continue
            if isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                if child.module.startswith("taintline"):
                    found.add(child.module)
                    found.update(f"{child.module}.{a.name}" for a in child.names)
            elif isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name.startswith("taintline"))
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def test_every_top_level_module_has_a_layer() -> None:
    missing = sorted({_group(m) for m in _modules()} - set(LAYERS))
    assert not missing, f"add these to LAYERS in tests/test_architecture.py: {missing}"


def test_no_module_imports_a_higher_layer() -> None:
    modules = _modules()
    wrong = []
    for module, path in sorted(modules.items()):
        here = LAYERS.get(_group(module), 0)
        for target in sorted(_imports(path, module_scope=False)):
            if target not in modules:
                continue
            there = LAYERS.get(_group(target), 0)
            if there > here:
                wrong.append(
                    f"{module} (layer {here}: {_group(module)}) imports {target}"
                    f" (layer {there}: {_group(target)})"
                )
    assert not wrong, "imports must point down (docs/architecture.md):\n" + "\n".join(wrong)


@pytest.mark.parametrize("module_scope", [True, False], ids=["module-scope", "with-lazy"])
def test_no_import_cycle(module_scope: bool) -> None:
    modules = _modules()
    graph = nx.DiGraph()
    for module, path in modules.items():
        graph.add_node(module)
        for target in _imports(path, module_scope=module_scope):
            if target in modules and target != module:
                graph.add_edge(module, target)
    cycles = [" -> ".join([*c, c[0]]) for c in nx.simple_cycles(graph)]
    assert not cycles, "import cycles:\n" + "\n".join(cycles[:10])


def test_no_long_file_without_a_reason() -> None:
    long = []
    for module, path in sorted(_modules().items()):
        lines = path.read_text(encoding="utf-8").count("\n")
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        where = str(path.relative_to(ROOT.parent))
        if lines > LONG and MARKER not in doc and where not in KNOWN_LONG:
            long.append(f"{path.relative_to(ROOT.parent)}: {lines} lines")
    assert not long, (
        f"files over {LONG} lines: split them, or say why they are one file in a"
        f" '{MARKER} ...' paragraph of the module docstring:\n" + "\n".join(long)
    )

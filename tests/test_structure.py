"""The package's import graph: no cycles, and embedding/ and finetune/ share only the core.

Every import counts, also those inside functions (a lazy import still ties two modules).
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sktransfer"


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path):
    """Names of the sktransfer modules that ``path`` imports (``from .x import y`` -> ``x.y`` when
    ``y`` is a module, else ``x``)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
            else:
                base = []
            target = ".".join(base + (node.module.split(".") if node.module else []))
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in MODULES else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in MODULES}


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: imports(path) for name, path in MODULES.items()}


def test_the_graph_was_read():
    assert "sktransfer.finetune._base" in GRAPH
    assert "sktransfer._batches" in GRAPH["sktransfer.finetune._base"]


def test_no_import_cycles():
    # Package __init__ files re-export their children; an edge child -> its own package's
    # __init__ is what a cycle through them would look like, so they count like any module.
    state = {}
    cycles = []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_nothing_imports_the_package_root():
    assert [name for name, targets in GRAPH.items() if "sktransfer" in targets and name != "sktransfer"] == []


@pytest.mark.parametrize("side, other", [("finetune", "embedding"), ("embedding", "finetune")])
def test_embedding_and_finetune_are_siblings_over_the_core(side, other):
    crossing = {
        (name, target)
        for name, targets in GRAPH.items()
        if name.startswith(f"sktransfer.{side}")
        for target in targets
        if target.startswith(f"sktransfer.{other}")
    }
    assert crossing == set()


@pytest.mark.parametrize("layer", ["selection", "zeroshot", "adaptation"])
def test_upper_layers_use_only_public_modules_of_the_layers_below(layer):
    private = {
        (name, target)
        for name, targets in GRAPH.items()
        if name.startswith(f"sktransfer.{layer}")
        for target in targets
        if target.startswith(("sktransfer.embedding.", "sktransfer.finetune.", "sktransfer.backbones."))
    }
    assert private == set()

"""The package's layers only point down, and no two modules import each other.

Every module under ``src/twopaths`` is parsed with :mod:`ast` (nothing is imported), and every import
of a ``twopaths`` module becomes an edge of a graph, wherever it stands: at the top, inside a function
(an import deferred to call time is still a dependency), or under ``if TYPE_CHECKING:`` (a type-only
edge: it counts for the layers, not for cycles, since it never runs).

- **Layers** (:data:`LAYERS`, low to high): a module may import its own layer or a lower one.
- **Cycles**: no strongly connected component of more than one module among the runtime edges.

A failure names each offending edge (importer -> imported, with their layers) or cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "twopaths"

#: low to high; a module may import modules of its own layer or of a lower one. The key of a module
#: is its first name under ``twopaths`` (``twopaths.nn.blocks`` -> ``nn``); the package itself
#: (``twopaths/__init__.py``, which re-exports the Python API) is ``twopaths``.
LAYERS: list[set[str]] = [
    {"version", "errors", "config"},  # the version, the error types, the typed run config
    {"viz"},  # image and plot files (PIL, matplotlib): imports no other layer
    {"nn"},  # layers and pure tensor functions
    {"data"},  # datasets and tokenizers
    {"backbones"},  # networks
    {"paradigms"},  # how a model is trained on and sampled from data: losses, samplers
    {"restore"},  # sampling-time applications of a trained paradigm (inpainting, super-resolution)
    {"training"},  # the training loop, checkpoints, optimiser
    {"models"},  # named model presets: config -> paradigm + backbone
    {"eval"},  # metrics of trained models
    {"runs"},  # a run directory -> a trained model or a trainer
    {"arena", "interop", "api"},  # head-to-head comparisons; Hugging Face import/export; the Python API
    {"cli", "__main__", "twopaths"},  # the command line; the package, whose __init__ re-exports the API
]



def module_files() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the package."""
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else None
            if name == "TYPE_CHECKING":
                guarded |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return guarded


def imports_of(module: str, path: Path, modules: set[str]) -> dict[str, bool]:
    """The ``twopaths`` modules that ``module`` imports -> whether only under TYPE_CHECKING."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    guarded = _type_checking_nodes(tree)
    is_package = path.name == "__init__.py"
    edges: dict[str, bool] = {}

    def add(target: str, node: ast.AST) -> None:
        if target != module:
            edges[target] = edges.get(target, True) and id(node) in guarded

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name
                while name and name not in modules:  # import a.b.c: the deepest module named
                    name = name.rpartition(".")[0]
                if name:
                    add(name, node)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importing module's package
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:  # from a.b import c, c a module
                    add(sub, node)
                else:
                    name = base
                    while name and name not in modules:
                        name = name.rpartition(".")[0]
                    if name:
                        add(name, node)
    return edges


def import_graph() -> dict[str, dict[str, bool]]:
    """module -> {imported module: type-only?} over the whole package."""
    files = module_files()
    return {module: imports_of(module, path, set(files)) for module, path in files.items()}


def layer_of(module: str) -> int:
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else parts[0]
    for i, names in enumerate(LAYERS):
        if key in names:
            return i
    raise KeyError(f"{module}: '{key}' is in no layer; add it to LAYERS in {Path(__file__).name}")


def upward_edges(graph: dict[str, dict[str, bool]]) -> set[tuple[str, str]]:
    return {(a, b) for a, targets in graph.items() for b in targets if layer_of(b) > layer_of(a)}


def cycles(graph: dict[str, dict[str, bool]]) -> list[list[str]]:
    """Strongly connected components of more than one module among the runtime edges (Tarjan)."""
    succ = {a: sorted(b for b, type_only in t.items() if not type_only) for a, t in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # recursion depth <= number of modules (about 120)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in succ.get(v, []):
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

    for v in sorted(succ):
        if v not in index:
            visit(v)
    return found


GRAPH = import_graph()


def test_the_graph_sees_the_package():
    assert len(GRAPH) > 50
    assert "twopaths.nn.attention" in GRAPH["twopaths.backbones.transformer"]
    assert "twopaths.data.text" in GRAPH["twopaths.data.recall"]  # an import inside a function counts
    assert GRAPH["twopaths.data.text"]["twopaths.data.tokenizers"] is True  # under TYPE_CHECKING only


def test_every_module_has_a_layer():
    for module in GRAPH:
        layer_of(module)


def test_layers_only_point_down():
    bad = sorted(upward_edges(GRAPH))
    assert not bad, "upward imports (importer -> imported; move code down or the import up):\n" + "\n".join(
        f"  {a} (layer {layer_of(a)}) -> {b} (layer {layer_of(b)})" for a, b in bad)


def test_no_import_cycles():
    found = cycles(GRAPH)
    assert not found, "import cycles:\n" + "\n".join("  " + " <-> ".join(c) for c in found)



def test_the_rules_catch_an_upward_edge_and_a_cycle():
    graph = {"twopaths.nn.low": {"twopaths.models.x": False},  # nn -> models: upward
             "twopaths.models.x": {"twopaths.models.y": False}, "twopaths.models.y": {"twopaths.models.x": False},
             "twopaths.models.z": {"twopaths.eval.w": True}}  # type-only and upward
    assert upward_edges(graph) == {("twopaths.nn.low", "twopaths.models.x"), ("twopaths.models.z", "twopaths.eval.w")}
    assert [sorted(c) for c in cycles(graph)] == [["twopaths.models.x", "twopaths.models.y"]]

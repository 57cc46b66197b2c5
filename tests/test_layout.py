"""The library's structure: layers that import only downward, no import cycles, no import hidden in a
function, a core (physics, numerics, models) free of file I/O, and the library free of Snakemake."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
# position of each subpackage; top-level modules (config, errors, logs, seeding, chunking) come first
LAYERS = {"physics": 1, "numerics": 2, "models": 3, "io": 4, "training": 5, "analysis": 6, "stages": 7, "figures": 7}
CORE = ("physics", "numerics", "models")


def modules() -> dict[str, ast.Module]:
    out = {}
    for path in (SRC / "activeflow").rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        out[name] = ast.parse(path.read_text())
    return out


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], 0) if len(parts) > 1 and parts[1] in LAYERS else 0


def imported(tree: ast.Module, known: set[str]) -> set[str]:
    """activeflow modules imported anywhere in the tree (a `from activeflow.x import y` counts as
    activeflow.x.y when that is a module)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("activeflow"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.add(full if full in known else node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("activeflow")}
    return out


def test_layers_import_only_downward_and_nothing_imports_in_a_function():
    mods = modules()
    graph = {m: imported(tree, set(mods)) for m, tree in mods.items()}
    upward = [(a, b) for a, targets in graph.items() for b in targets if layer(b) > layer(a)]
    assert not upward, upward
    hidden = [m for m, tree in mods.items() for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
              if imported(f, set(mods))]
    assert not hidden, hidden


def test_there_is_no_import_cycle():
    mods = modules()
    graph = {m: imported(tree, set(mods)) & set(mods) for m, tree in mods.items()}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in graph[m]:
            assert state.get(n) != 1, " -> ".join(path[path.index(n):] + [n]) if n in path else n
            if n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])


def test_the_core_does_no_file_io_and_the_library_no_snakemake():
    for m, tree in modules().items():
        names = {a.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
        names |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert "snakemake" not in names, m
        if layer(m) and m.split(".")[1] in CORE:
            assert not names & {"xarray", "netCDF4", "pandas"}, (m, names)
            assert "activeflow.io" not in imported(tree, set()), m

"""The package's layers: imports run one way (app → teach / engine → modelio → networks), with no cycles."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "editgan"
LEAVES = {"editgan.errors", "editgan.colors", "editgan.assets", "editgan.lru"}
ALLOWED = {  # layer → the layers its modules may import (besides the leaves and itself)
    "networks": set(),
    "modelio": {"networks"},
    "engine": {"networks", "modelio"},
    "teach": {"networks", "modelio", "engine"},
    "app": {"networks", "modelio", "engine", "teach"},
    "toy": {"networks", "modelio", "engine", "teach"},
    "cli": {"networks", "modelio", "engine", "teach", "app", "toy", "bench"},
    "bench": {"networks", "modelio", "engine", "teach"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def editgan_imports(path: Path) -> set[str]:
    """Every editgan module ``path`` imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("editgan"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)  # "from editgan.toy import faces"
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: relative import; the package uses absolute imports")
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("editgan"))
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in editgan_imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_imports_run_one_way_between_layers():
    wrong = []
    for module, imports in graph().items():
        if module in LEAVES or module in ("editgan", "editgan.__main__"):
            continue
        own = layer(module)
        for imported in imports:
            other = layer(imported)
            if imported in LEAVES or other == own or imported == "editgan":
                continue
            if own in LEAVES or other not in ALLOWED.get(own, set()):
                wrong.append(f"{module} imports {imported}")
    assert not wrong, "imports against the layers: " + "; ".join(sorted(wrong))


def test_leaves_import_nothing_of_the_package_but_errors():
    g = graph()
    for leaf in LEAVES:
        assert g[leaf] <= {"editgan.errors"}, f"{leaf} imports {g[leaf]}"


def test_no_import_cycles():
    g = graph()
    cycles = []

    def visit(module: str, stack: list[str], done: set[str]) -> None:
        if module in stack:
            cycles.append(" → ".join(stack[stack.index(module):] + [module]))
            return
        if module in done:
            return
        for imported in sorted(g.get(module, ())):
            if imported.startswith(module + ".") or module == "editgan":
                continue  # a package importing its own submodules is not a cycle
            visit(imported, stack + [module], done)
        done.add(module)

    done: set[str] = set()
    for module in sorted(g):
        visit(module, [], done)
    assert not cycles, "import cycles: " + "; ".join(cycles)

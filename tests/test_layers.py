"""The package's import graph: every import of an x402_mcp module (module-level, inside a
function, or type-only) points down the layers or stays within its layer, and no import,
of any kind, closes a cycle.

The layers, top to bottom (see docs/architecture.md):

    x402_mcp (the curated __init__)
    cli
    frameworks
    gate
    page, client, facilitator
    telemetry
    ledger, settlement
    schemes
    core, errors

`chains` (the development chain, devnet, demo) and `devchain` (the embedded chain's public
name) stand beside them: only `cli` (and the tests) may import them; nothing on the
production path may. Within a layer imports are free, but a cycle fails wherever it closes.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "x402_mcp"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("x402_mcp",),
    ("cli",),
    ("frameworks",),
    ("gate",),
    ("page", "client", "facilitator"),
    ("telemetry",),
    ("ledger", "settlement"),
    ("schemes",),
    ("core", "errors"),
)
# The development chains, and `x402_mcp.devchain`, the public name of the embedded one.
DEVELOPMENT_ONLY = frozenset({"chains", "devchain"})
MAY_IMPORT_DEVELOPMENT = frozenset({"cli", "x402_mcp", *DEVELOPMENT_ONLY})


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    where: str  # file:line

    def __str__(self) -> str:
        return f"{self.where}: {self.importer} -> {self.imported}"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(module: str) -> bool:
    base = PACKAGE.parent / module.replace(".", "/")
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _imports(path: Path, source: str | None = None) -> list[Edge]:
    """Every x402_mcp module `path` imports, wherever the import statement stands."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    where = path.relative_to(PACKAGE.parent)
    edges: list[Edge] = []
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base == "x402_mcp" or base.startswith("x402_mcp."):
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    targets.append(candidate if _exists(candidate) else base)
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names if alias.name.split(".")[0] == "x402_mcp"]
        edges.extend(Edge(name, target, f"{where}:{node.lineno}") for target in targets if target != name)
    return edges


def _all_edges() -> list[Edge]:
    return [edge for path in sorted(PACKAGE.rglob("*.py")) for edge in _imports(path)]


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "x402_mcp"


def _rank(module: str) -> int:
    area = _area(module)
    for rank, layer in enumerate(LAYERS):
        if area in layer:
            return rank
    raise AssertionError(f"{module} sits in no layer: add its folder {area!r} to LAYERS")


def _wrong_way(edge: Edge) -> str | None:
    """Why `edge` breaks the layer order, or None when it points down or stays level."""
    importer, imported = _area(edge.importer), _area(edge.imported)
    if imported in DEVELOPMENT_ONLY:
        return None if importer in MAY_IMPORT_DEVELOPMENT else "imports the development-only chains"
    if importer in DEVELOPMENT_ONLY:
        return None  # the dev chain may use anything below the entry points
    if _rank(edge.importer) > _rank(edge.imported):
        return f"points up ({importer} is below {imported})"
    return None


def _cycles(edges: list[Edge]) -> list[list[str]]:
    graph: dict[str, set[str]] = {}
    for edge in edges:
        # A package's __init__ re-exporting its own modules is a way down, not a cycle.
        if not edge.imported.startswith(f"{edge.importer}."):
            graph.setdefault(edge.importer, set()).add(edge.imported)
    # Tarjan's strongly connected components: every cycle lies inside one.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph.get(module, ())):
            if target not in index:
                connect(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            connect(module)
    return components


def _report(edges: list[Edge], reasons: dict[Edge, str]) -> str:
    return "\n".join(f"  {edge}  [{reasons[edge]}]" for edge in edges)


def test_every_import_points_down_the_layers() -> None:
    wrong = {edge: reason for edge in _all_edges() if (reason := _wrong_way(edge)) is not None}
    assert not wrong, "imports that point up the layers:\n" + _report(sorted(wrong, key=str), wrong)


def test_no_import_closes_a_cycle() -> None:
    edges = _all_edges()
    cycles = _cycles(edges)
    detail = []
    for component in cycles:
        members = set(component)
        inside = [edge for edge in edges if edge.importer in members and edge.imported in members]
        lines = "\n".join(f"  {edge}" for edge in inside)
        detail.append("cycle among " + ", ".join(component) + ":\n" + lines)
    assert not cycles, "\n".join(detail)


def test_every_folder_has_a_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        if _area(module) not in DEVELOPMENT_ONLY:
            _rank(module)


def test_the_checker_sees_imports_in_functions_and_under_type_checking() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import money\n"
        "if TYPE_CHECKING:\n"
        "    from ..ledger.base import Ledger\n"
        "def later():\n"
        "    import x402_mcp.gate.core\n"
    )
    edges = _imports(PACKAGE / "core" / "example.py", source)
    assert [(edge.imported, edge.where) for edge in edges] == [
        ("x402_mcp.core.money", "x402_mcp/core/example.py:2"),
        ("x402_mcp.ledger.base", "x402_mcp/core/example.py:4"),
        ("x402_mcp.gate.core", "x402_mcp/core/example.py:6"),
    ]
    assert [edge for edge in edges if _wrong_way(edge)] == edges[1:]
    up = Edge("x402_mcp.core.money", "x402_mcp.gate.core", "x402_mcp/core/money.py:1")
    down = Edge("x402_mcp.gate.core", "x402_mcp.core.money", "x402_mcp/gate/core.py:1")
    level = Edge("x402_mcp.page.app", "x402_mcp.client.budget", "x402_mcp/page/app.py:1")
    dev = Edge("x402_mcp.page.app", "x402_mcp.chains.devchain", "x402_mcp/page/app.py:1")
    assert _wrong_way(up) and not _wrong_way(down) and not _wrong_way(level) and _wrong_way(dev)
    assert _cycles([up, down]) == [["x402_mcp.core.money", "x402_mcp.gate.core"]]

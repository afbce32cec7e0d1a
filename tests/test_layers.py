"""The package's import graph: no cycle among x402_mcp's modules (imports point down the layers)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "x402_mcp"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports_at_load(path: Path) -> set[str]:
    """The x402_mcp modules `path` imports at module level, type-only imports included
    (a cycle through `TYPE_CHECKING` still ties two layers together); imports inside
    functions, which load a door only when it is used, are left out."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    body = ast.parse(path.read_text()).body
    nodes = [*body, *(inner for node in body if isinstance(node, ast.If) for inner in node.body)]
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.startswith("x402_mcp"):
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    is_module = (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists()
                    is_package = (PACKAGE.parent / candidate.replace(".", "/") / "__init__.py").exists()
                    found.add(candidate if is_module or is_package else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("x402_mcp"))
    found.discard(name)
    return found


def _graph() -> dict[str, set[str]]:
    return {_module_name(path): _imports_at_load(path) for path in PACKAGE.rglob("*.py")}


def test_no_module_imports_itself_back_through_others() -> None:
    graph = _graph()
    # A package's __init__ re-exporting its own modules is a way down, not a cycle.
    edges = {
        module: {target for target in targets if not target.startswith(f"{module}.")}
        for module, targets in graph.items()
    }
    visiting: list[str] = []
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        if module in done:
            return
        if module in visiting:
            cycles.append([*visiting[visiting.index(module) :], module])
            return
        visiting.append(module)
        for target in sorted(edges.get(module, ())):
            # Importing `a.b.c` loads `a.b` first; follow the module itself.
            visit(target)
        visiting.pop()
        done.add(module)

    for module in sorted(edges):
        visit(module)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_the_gate_core_knows_no_framework() -> None:
    graph = _graph()
    for module in ("x402_mcp.gate", "x402_mcp.gate.core", "x402_mcp.gate.call"):
        assert not {target for target in graph[module] if target.startswith("x402_mcp.frameworks")}
        source = (PACKAGE / module.removeprefix("x402_mcp.").replace(".", "/")).with_suffix(".py")
        path = source if source.exists() else source.with_suffix("") / "__init__.py"
        text = path.read_text()
        assert "fastmcp" not in text.lower().replace("x402_mcp.frameworks", "")
        assert "MCPServer" not in text and "_sdk" not in text


@pytest.mark.parametrize(
    "module", ["x402_mcp.gate.config", "x402_mcp.page.serving", "x402_mcp.gate", "x402_mcp.core.links"]
)
def test_low_modules_load_without_the_doors(module: str) -> None:
    assert importlib.import_module(module) is not None
    assert "x402_mcp.frameworks.fastmcp" not in _graph()[module]

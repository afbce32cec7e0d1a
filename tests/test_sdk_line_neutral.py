"""The gate and everything under it import nothing of one MCP SDK line (issue 24): the same
modules serve `mcp` 1.x and 2.x, so their MCP types come from `mcp_types`, and only the doors
(and the few places that are themselves 2.x-only, loaded on use) touch `mcp` itself."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "x402_mcp"

# Where importing `mcp` itself is the point: the framework doors and their seams, the CLI
# (its bundle lister is an MCP client), the paying client (an SDK 2.x client, loaded lazily
# by `x402_mcp.client`), the MCP Apps card (SDK 2.x only, imported inside its functions) and
# `x402-mcp demo`'s in-process server (development only).
MAY_IMPORT_MCP = ("frameworks/", "cli/", "client/paying.py", "page/card.py", "chains/demo.py")


def _mcp_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found += [
            f"{path.relative_to(PACKAGE)}:{node.lineno}: {name}"
            for name in names
            if name.split(".")[0] == "mcp"
        ]
    return found


def test_only_the_doors_import_an_mcp_sdk_line() -> None:
    offending = [
        line
        for path in sorted(PACKAGE.rglob("*.py"))
        if not str(path.relative_to(PACKAGE)).startswith(MAY_IMPORT_MCP)
        for line in _mcp_imports(path)
    ]
    assert not offending, "import mcp_types (or move the code into a door):\n" + "\n".join(offending)

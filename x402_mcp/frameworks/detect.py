"""Which supported framework a server object is of, without importing any framework that
is not installed (and without importing the doors, so `Payments` can ask it)."""

from __future__ import annotations

from mcp.server import MCPServer


def framework_of(server: object) -> str | None:
    """`mcpserver` or `fastmcp` for a server of a supported framework, else None."""
    if isinstance(server, MCPServer):
        return "mcpserver"
    # FastMCP is recognised by class name and module, so fastmcp need not be installed.
    if any(
        cls.__module__.startswith("fastmcp.") and cls.__name__ == "FastMCP" for cls in type(server).__mro__
    ):
        return "fastmcp"
    return None

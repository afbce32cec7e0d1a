"""The one place x402-mcp touches MCP SDK internals.

An `Extension` is never handed its server, yet the gate must know which
registered tool a `tools/call` names (to read its `@paid` marker) and must
advertise prices in `tools/list`. Both need the `MCPServer`. We find it once,
while the server applies its extensions, and read its tool registry. Every
private name used is here; `tests/test_sdk_seam.py` fails loudly when an SDK
release moves them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver.tools.base import Tool

from ._lowlevel import rebind_registrations, wrap_lowlevel_lifespan


def server_applying_extensions() -> MCPServer[Any] | None:
    """The `MCPServer` whose constructor is applying extensions right now.

    Called from `Extension.tools()`, which `MCPServer._apply_extension` invokes
    during `MCPServer.__init__`; the server is that frame's `self`.
    """
    frame = sys._getframe(1)
    for _ in range(4):
        frame_or_none = frame.f_back
        if frame_or_none is None:
            return None
        frame = frame_or_none
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, MCPServer):
            return candidate
    return None


def tool_function(server: MCPServer[Any], name: str) -> Callable[..., Any] | None:
    """The Python function registered as tool `name`, or None."""
    tool = server._tool_manager.get_tool(name)
    return None if tool is None else tool.fn


def tool_output_schema(server: MCPServer[Any], name: str) -> dict[str, Any] | None:
    """The `outputSchema` tool `name` declares in `tools/list`, or None."""
    tool = server._tool_manager.get_tool(name)
    return None if tool is None else tool.output_schema


def validated_tool_arguments(server: MCPServer[Any], name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """`arguments` of a call of tool `name` as its function will receive them, checked by the
    SDK's own argument model for the tool (the one `tools/list` publishes as its input schema).

    Context and resolver parameters are not among them: the SDK fills those itself.

    Raises:
        pydantic.ValidationError: the arguments do not fit the tool's input schema.
        LookupError: there is no tool `name`.
    """
    tool = server._tool_manager.get_tool(name)
    if tool is None:
        raise LookupError(f"there is no tool {name!r}")
    return tool.fn_metadata.validate_arguments(arguments)


def wrap_lifespan(server: MCPServer[Any], outer: Callable[[], AbstractAsyncContextManager[None]]) -> None:
    """Run `outer()` around the server's lifespan (entered by stdio, in-memory and HTTP runs).

    MCPServer hands its lifespan to the low-level server at construction; the
    low-level server enters `self.lifespan` when it starts serving.
    """
    wrap_lowlevel_lifespan(server._lowlevel_server, outer)


def rebind_tool_function(holders: list[object], old: Callable[..., Any], new: Callable[..., Any]) -> int:
    """Point each `MCPServer` tool among `holders` that runs `old` at `new` (`@paid` above
    `@server.tool()`; see `rebind_registrations`); how many were."""
    return rebind_registrations(holders, Tool, old, new)


def extensions(server: MCPServer[Any]) -> list[Any]:
    """The extensions `server` was constructed with (`MCPServer(..., extensions=[...])`)."""
    return list(server._extensions)


def tool_functions(server: MCPServer[Any]) -> list[tuple[str, Callable[..., Any]]]:
    """Every registered tool's name and the Python function a call of it runs."""
    return [(tool.name, tool.fn) for tool in server._tool_manager.list_tools()]

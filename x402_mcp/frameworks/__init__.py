"""Framework doors: read a framework's `tools/call` into a `ToolCall`, hand it to the gate,
write the result back; and hang the page, the prices and the lifespan on the server.

- `mcpserver`: the MCP SDK's `MCPServer` (an `Extension`, plus two middlewares).
- `fastmcp`: standalone FastMCP 4 (the outermost `Middleware`, plus a `ServerExtension`).
- `handshake`: `capabilities.extensions` in the classic `initialize` answer, for both.
- `choice`: build, recognise, run and serve a server of either framework (samples, CLI).
- `payments`: `Payments`, the gate installed on a server of any of them.

A third framework is one more module here, one line in `Payments.install` and, for `@paid`
above its tool decorator, one rebinder below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..gate.guard import register_rebinder

# `@paid` above a tool decorator finds the registrations through these (see gate.guard).
# Each seam loads only when its framework is loaded and a `@paid` needs it, so importing
# this package loads no framework.


def _rebind_sdk(holders: list[object], old: Callable[..., Any], new: Callable[..., Any]) -> object:
    from . import _sdk

    return _sdk.rebind_tool_function(holders, old, new)


def _rebind_sdk1(holders: list[object], old: Callable[..., Any], new: Callable[..., Any]) -> object:
    from . import _sdk1_seam

    return _sdk1_seam.rebind_tool_function(holders, old, new)


def _rebind_fastmcp(holders: list[object], old: Callable[..., Any], new: Callable[..., Any]) -> object:
    from . import _fastmcp_seam

    return _fastmcp_seam.rebind_tool_function(holders, old, new)


register_rebinder("mcp.server.mcpserver", _rebind_sdk)
register_rebinder("mcp.server.fastmcp", _rebind_sdk1)
register_rebinder("fastmcp", _rebind_fastmcp)

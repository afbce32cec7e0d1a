"""What `Payments` takes from the installed MCP SDK line, importable on 1.x and 2.x alike.

`Payments` is an SDK 2.x `Extension` (so `MCPServer(..., extensions=[payments])` works); the
1.x line has no extensions, and there `Payments` is a plain class that `install(server)`s.
Everything else that differs between the lines lives in the doors (`mcpserver`, `sdk1`,
`fastmcp`) and their seams, imported only when a server of theirs is met.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

IDENTIFIER = "dev.x402-mcp/payments"
"""The payments' extension identifier (SEP-2133), the same on every door."""

if TYPE_CHECKING or importlib.util.find_spec("mcp.server.mcpserver") is not None:
    from mcp.server.mcpserver import Extension as SdkExtension
else:

    class SdkExtension:
        """MCP SDK 1.x has no `Extension`: `Payments` is installed with `install(server)` there."""


__all__ = ["IDENTIFIER", "SdkExtension"]

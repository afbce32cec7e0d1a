"""`capabilities.extensions` for clients that connect with the classic `initialize` handshake.

The MCP SDK shapes an `initialize` result through the schema of the negotiated protocol
version, and the handshake-era schemas (up to 2025-11-25) have no `capabilities.extensions`:
the SDK drops it. A TypeScript SDK 1.x client (under Claude Desktop, Cursor, VS Code), or
anyone sending a raw `initialize`, would then never learn the payments' network, asset and
payee, although its own schema takes `extensions`. This low-level server middleware writes
the entry back into the result after that shaping; both doors install it, so the answer is
the same on `MCPServer` and FastMCP. Modern-era clients (`server/discover`) get the entry
from the SDK itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from .sdk_line import IDENTIFIER

__all__ = ["IDENTIFIER", "AdvertiseOnInitialize"]


class AdvertiseOnInitialize:
    """A low-level `Server.middleware` that adds `capabilities.extensions[identifier]` to
    every `initialize` result lacking it, with `settings()` read per handshake."""

    def __init__(self, identifier: str, settings: Callable[[], dict[str, Any]]) -> None:
        self.identifier = identifier
        self.settings = settings

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method != "initialize" or not isinstance(result, dict):
            return result
        capabilities = result.get("capabilities")
        if not isinstance(capabilities, dict):
            return result
        extensions = capabilities.get("extensions")
        extensions = dict(extensions) if isinstance(extensions, dict) else {}
        if self.identifier not in extensions:
            extensions[self.identifier] = self.settings()
        # A copy, never the dict the SDK may still hold.
        return {**result, "capabilities": {**capabilities, "extensions": extensions}}

"""`Payments`: the gate, installed on an MCP server of either framework.

```python
server = MCPServer("research", extensions=[payments])   # the MCP SDK 2.x
payments.install(server)                                 # MCP SDK 1.x FastMCP, FastMCP 3 and 4
```

The money path is `Gate`'s alone; this class only picks the door
(`x402_mcp.frameworks`) for the server it meets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcp_types import CallToolRequestParams

from ..core.pricing import PaidTool
from ..errors import ConfigurationError
from ..frameworks.detect import framework_of
from ..frameworks.sdk_line import IDENTIFIER, SdkExtension
from ..telemetry import Hook
from . import Gate

if TYPE_CHECKING:
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

    from ..frameworks.mcpserver import MCPServerDoor

NOT_INSTALLED = (
    "Payments is not installed on a server: pass it as MCPServer(..., extensions=[payments]), "
    "or call payments.install(mcp) on a fastmcp.FastMCP server"
)


class Payments(Gate, SdkExtension):
    """Charge for `@paid` tools on an `MCPServer` (`extensions=[payments]`), or on an MCP SDK 1.x
    `FastMCP` or a FastMCP 3 or 4 server (`payments.install(server)`). Takes the arguments of `Gate`.
    """

    identifier = IDENTIFIER
    # Set by `install` on an MCPServer (no __init__ here, so `Gate`'s typed signature is the one).
    _mcpserver: MCPServerDoor | None = None

    def tools(self) -> tuple[()]:
        # Called by MCPServer while it applies extensions: our one chance to meet it.
        from ..frameworks import _sdk

        server = _sdk.server_applying_extensions()
        if server is not None:
            self.install(server)
        return ()

    def install(self, server: Any) -> None:
        """Put the gate in front of `server`'s paid tools, its prices in `tools/list` and the
        payment page on its HTTP app and stdio side port.

        `MCPServer(extensions=[payments])` calls this itself; an MCP SDK 1.x `FastMCP` and a
        FastMCP 3 or 4 server need `payments.install(server)` (once, before it serves).

        Raises:
            ConfigurationError: `server` is of no supported framework, the payments are
                installed on another server already, a caching middleware would answer
                before the gate, or `public_url` is not an http(s) URL.
        """
        if self.server is server:
            return
        if self.server is not None:
            raise ConfigurationError(
                f"these Payments are installed on {self.server!r} already; one Payments serves one server"
            )
        framework = framework_of(server)
        if framework == "mcpserver":
            from ..frameworks.mcpserver import MCPServerDoor

            door = MCPServerDoor(self, server)
            self.server = server
            self._mcpserver = door
            door.attach()
            return
        if framework == "sdk1":
            from ..frameworks.sdk1 import SDK1Door

            SDK1Door(self, server).attach()
            self.server = server
            return
        if framework == "fastmcp":
            from ..frameworks.fastmcp import FastMCPDoor

            FastMCPDoor(self, server).attach()
            self.server = server
            return
        raise ConfigurationError(
            f"cannot install Payments on {type(server).__name__}: pass an mcp MCPServer "
            "(extensions=[payments]), an mcp.server.fastmcp.FastMCP or a fastmcp.FastMCP server"
        )

    def on(self, event: str, callback: Hook) -> Hook:
        """Run `async callback(event: PaymentEvent)` after each payment event of kind `event`
        (`quoted`, `paid`, `redeemed`, `refused`, `settlement_failed`, `reconciled`), once the
        ledger recorded it, off the call's path (see `x402_mcp.telemetry.hooks`).

        Returns `callback`. Raises `ConfigurationError` for an unknown event or a callback
        that is not an `async def` function.
        """
        return self.telemetry.hooks.on(event, callback)

    attach = install
    """The name `install` had before FastMCP support; kept for callers of `attach(server)`."""

    def paid_tool(self, name: str) -> PaidTool | None:
        """The `@paid` marker of tool `name` on the `MCPServer` these payments are on, if any."""
        if self._mcpserver is None:
            raise ConfigurationError(NOT_INSTALLED)
        return self._mcpserver.paid_tool(name)

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if self._mcpserver is None:
            raise ConfigurationError(NOT_INSTALLED)
        return await self._mcpserver.intercept(params, ctx, call_next)

"""Build a paid server on the framework of one's choice (what the sample servers do), and
run one of either framework the same way (what `x402-mcp serve` and `bundle` do).

```python
server = paid_server("textkit", payments, framework="fastmcp")   # or "mcpserver"
```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mcp.server import MCPServer

from ..core.text import shown
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from fastmcp import FastMCP

    from ..gate.payments import Payments

FRAMEWORKS = ("mcpserver", "fastmcp")
FRAMEWORK_OPTION = "--framework"


def paid_server(name: str, payments: Payments, framework: str = "mcpserver") -> MCPServer[Any] | FastMCP[Any]:
    """An empty server called `name` with `payments` installed, on `framework`.

    Raises:
        ConfigurationError: an unknown framework, named with the known ones.
    """
    if framework == "mcpserver":
        return MCPServer(name, extensions=[payments], log_level="WARNING")
    if framework == "fastmcp":
        from fastmcp import FastMCP

        server: FastMCP[Any] = FastMCP(name)
        payments.install(server)
        return server
    raise ConfigurationError(f"unknown framework {shown(framework)!r}; choose one of {', '.join(FRAMEWORKS)}")


def framework_from_argv(argv: Sequence[str]) -> str:
    """The `--framework NAME` of a sample's command line (default `mcpserver`).

    Raises:
        ConfigurationError: the option lacks its value.
    """
    for index, word in enumerate(argv):
        if word == FRAMEWORK_OPTION:
            if index + 1 >= len(argv):
                raise ConfigurationError(f"{FRAMEWORK_OPTION} needs one of {', '.join(FRAMEWORKS)}")
            return argv[index + 1]
        if word.startswith(f"{FRAMEWORK_OPTION}="):
            return word.split("=", 1)[1]
    return "mcpserver"


def run_stdio(server: MCPServer[Any] | FastMCP[Any]) -> None:
    """Serve over stdio, where stdout is the MCP channel (so FastMCP shows no banner)."""
    if isinstance(server, MCPServer):
        server.run()
    else:
        server.run(show_banner=False)


def in_memory(server: MCPServer[Any] | FastMCP[Any]) -> Any:
    """What the MCP SDK's `Client(...)` connects to in memory for `server` (either framework)."""
    if isinstance(server, MCPServer):
        return server
    from ._fastmcp_seam import lowlevel_server

    return lowlevel_server(server)


def streamable_http_app(server: MCPServer[Any] | FastMCP[Any], host: str) -> Any:
    """`server`'s streamable-HTTP ASGI app (MCP at `/mcp`, the payment page beside it), bound
    for `host`; its lifespan runs the server's."""
    if isinstance(server, MCPServer):
        return server.streamable_http_app(host=host)
    return server.http_app(transport="streamable-http")

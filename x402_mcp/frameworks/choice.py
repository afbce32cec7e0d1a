"""Build a paid server on the framework of one's choice (what the sample servers do), and
run one of any framework the same way (what `x402-mcp serve` and `bundle` do).

```python
server = paid_server("textkit", payments, framework="fastmcp")   # or "mcpserver", "sdk1"
```

`FRAMEWORKS` are the ones installed here (see `detect`): `mcpserver` and `fastmcp` (FastMCP 4)
next to the MCP SDK 2.x, `sdk1` and `fastmcp` (FastMCP 3) next to 1.x.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..core.text import shown
from ..errors import ConfigurationError
from .detect import ALL_FRAMEWORKS, framework_of, installed_frameworks

if TYPE_CHECKING:
    from .payments import Payments

FRAMEWORKS = installed_frameworks()
DEFAULT_FRAMEWORK = FRAMEWORKS[0]
"""The MCP SDK's own server class of the installed line: `mcpserver` (2.x) or `sdk1` (1.x)."""
FRAMEWORK_OPTION = "--framework"


def paid_server(name: str, payments: Payments, framework: str = DEFAULT_FRAMEWORK) -> Any:
    """An empty server called `name` with `payments` installed, on `framework`.

    Raises:
        ConfigurationError: an unknown framework, or one not installed here, named with those that are.
    """
    if framework not in FRAMEWORKS:
        known = "is not installed here" if framework in ALL_FRAMEWORKS else "is unknown"
        raise ConfigurationError(
            f"framework {shown(framework)!r} {known}; choose one of {', '.join(FRAMEWORKS)}"
        )
    if framework == "mcpserver":
        from mcp.server import MCPServer

        return MCPServer(name, extensions=[payments], log_level="WARNING")
    server: Any
    if framework == "sdk1":
        from .sdk1 import new_server

        server = new_server(name)
    else:
        from fastmcp import FastMCP

        server = FastMCP(name)
    payments.install(server)
    return server


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
    return DEFAULT_FRAMEWORK


def run_stdio(server: Any) -> None:
    """Serve over stdio, where stdout is the MCP channel (so FastMCP shows no banner)."""
    if framework_of(server) == "fastmcp":
        server.run(show_banner=False)
    else:
        server.run()


def in_memory(server: Any) -> Any:
    """What the MCP SDK's client connects to in memory for `server` (any framework)."""
    framework = framework_of(server)
    if framework == "mcpserver":
        return server
    if framework == "sdk1":
        from ._sdk1_seam import lowlevel_server as sdk1_lowlevel

        return sdk1_lowlevel(server)
    from ._fastmcp_seam import lowlevel_server

    return lowlevel_server(server)


def streamable_http_app(server: Any, host: str) -> Any:
    """`server`'s streamable-HTTP ASGI app (MCP at `/mcp`, the payment page beside it), bound
    for `host`; its lifespan runs the server's."""
    framework = framework_of(server)
    if framework == "mcpserver":
        return server.streamable_http_app(host=host)
    if framework == "sdk1":
        # SDK 1.x takes host and DNS-rebinding protection at construction (`FastMCP(host=...)`).
        return server.streamable_http_app()
    return server.http_app(transport="streamable-http")


def _sdk_tool_error() -> type[Exception]:
    import importlib

    line = "mcpserver" if "mcpserver" in FRAMEWORKS else "fastmcp"
    error: type[Exception] = importlib.import_module(f"mcp.server.{line}.exceptions").ToolError
    return error


ToolError = _sdk_tool_error()
"""The installed MCP SDK's `ToolError` (its words reach the client on every framework here)."""


def tool_annotations(title: str, **hints: bool) -> Any:
    """The SDK's `ToolAnnotations` for `title` with hints by their wire names (`readOnlyHint=True`),
    which both SDK lines accept."""
    from mcp.types import ToolAnnotations

    return ToolAnnotations.model_validate({"title": title, **hints})

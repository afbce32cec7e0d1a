"""Whether every `@paid` tool a server lists is answered by its payments gate, checked
before the server serves (by `x402-mcp serve`/`bundle`/`claude-config`, and by the gate's
own start-up hook), so that a forgotten gate is an error at start, not a refusal per call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import anyio

from ..core.pricing import PaidTool, check_fixed_price, paid_spec
from ..core.text import shown
from ..errors import ConfigurationError
from ..gate import Gate
from .detect import framework_of

logger = logging.getLogger("x402_mcp")

INSTALL_THE_GATE = (
    "install the payments gate: MCPServer(..., extensions=[payments]) on the MCP SDK 2.x, "
    "or payments.install(server) on MCP SDK 1.x FastMCP and on FastMCP 3 and 4"
)


async def ungated_paid_tools(server: Any) -> list[str]:
    """The names of the `@paid` tools `server` lists that no payments gate of it answers."""
    framework = framework_of(server)
    if framework == "mcpserver":
        from . import _sdk

        gated = any(
            isinstance(getattr(extension, "gate", None), Gate) for extension in _sdk.extensions(server)
        )
        return [] if gated else [name for name, fn in _sdk.tool_functions(server) if paid_spec(fn)]
    if framework == "sdk1":
        from mcp.types import CallToolRequest

        from . import _sdk1_seam

        # The door answers every paid tool the server registers, by its function, once it is in.
        gated = getattr(_sdk1_seam.handler(server, CallToolRequest), "x402_gate", None) is not None
        return [] if gated else [name for name, fn in _sdk1_seam.tool_functions(server) if paid_spec(fn)]
    if framework == "fastmcp":
        from . import _fastmcp_seam as seam

        gated = any(
            getattr(middleware, "x402_gate", None) is not None for middleware in seam.middleware_chain(server)
        )
        uncovered = []
        for tool in await _listed_by_fastmcp(server):
            if any(paid_spec(fn) for fn in await seam.functions_behind(tool)):
                # The gate knows a paid tool by the function of the tool it runs, as its door reads it.
                fn = seam.tool_function(await seam.defining_tool(tool))
                if not (gated and fn is not None and paid_spec(fn)):
                    uncovered.append(str(tool.name))
        return uncovered
    return []


async def check_at_start(server: Any, decimals: int, symbol: str) -> None:
    """What a gated server checks as it starts: every paid tool it lists goes through its gate,
    and every fixed price can be charged in the token the gate is configured with.

    Raises:
        ConfigurationError: naming the tools.
    """
    missing = await ungated_paid_tools(server)
    if missing:
        raise ConfigurationError(
            f"paid tool(s) {', '.join(shown(name, 60) for name in missing)} are listed by this server "
            "but not answered by its payments gate (a tool made from a paid one with Tool.from_tool? "
            "put @paid on the tool the server lists), so they could only refuse every call"
        )
    listed: list[tuple[str, Callable[..., Any] | None]]
    framework = framework_of(server)
    if framework == "mcpserver":
        from . import _sdk

        listed = list(_sdk.tool_functions(server))
    elif framework == "sdk1":
        from . import _sdk1_seam

        listed = list(_sdk1_seam.tool_functions(server))
    else:
        from . import _fastmcp_seam as seam

        listed = [
            (str(tool.name), seam.tool_function(await seam.defining_tool(tool)))
            for tool in await _listed_by_fastmcp(server)
        ]
    check_prices(paid_tools(listed), decimals, symbol)


def require_gate(server: Any, where: str) -> None:
    """Refuse a server whose `@paid` tools would have no gate (for the CLI, outside any event loop).

    Raises:
        ConfigurationError: naming the tools and the missing line.
    """
    missing = anyio.run(ungated_paid_tools, server)
    if missing:
        raise ConfigurationError(
            f"{where}: paid tool(s) {', '.join(shown(name, 60) for name in missing)} would have no "
            f"x402 payments gate, so they could only refuse every call; {INSTALL_THE_GATE}"
        )


def check_prices(tools: Iterable[tuple[str, PaidTool]], decimals: int, symbol: str) -> None:
    """Every fixed price among `tools` checked against the token the gate is configured with.

    Raises:
        ConfigurationError: naming the tool and why its price cannot be charged in this token.
    """
    for name, spec in tools:
        if not spec.is_dynamic:
            price: Any = spec.price
            try:
                check_fixed_price(price, decimals)
            except ConfigurationError as exc:
                raise ConfigurationError(
                    f"paid tool {shown(name, 60)!r} cannot be charged in {symbol}: {exc}"
                ) from None


def paid_tools(tools: Iterable[tuple[str, Callable[..., Any] | None]]) -> list[tuple[str, PaidTool]]:
    """The `@paid` ones among `(name, function)` pairs, with their markers."""
    found = []
    for name, fn in tools:
        spec = None if fn is None else paid_spec(fn)
        if spec is not None:
            found.append((name, spec))
    return found


async def _listed_by_fastmcp(server: Any) -> list[Any]:
    """The tools a FastMCP server lists; none when its providers cannot list them now (a proxy
    whose remote is down): each paid tool's own guard still refuses calls that bypass a gate."""
    try:
        return list(await server.list_tools(run_middleware=False))
    except Exception:  # a provider's failure, not ours to judge at start
        logger.warning(
            "could not list the tools of FastMCP server %r to check their gate", server.name, exc_info=True
        )
        return []

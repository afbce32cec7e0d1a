"""Which supported framework a server object is of, and which frameworks are installed, without
importing any framework (and without importing the doors, so `Payments` can ask it).

| name        | framework                                              | MCP SDK line |
|-------------|--------------------------------------------------------|--------------|
| `mcpserver` | the MCP SDK's `mcp.server.MCPServer`                   | 2.x          |
| `sdk1`      | the MCP SDK's `mcp.server.fastmcp.FastMCP`             | 1.x          |
| `fastmcp`   | standalone `fastmcp.FastMCP`: 4 on SDK 2.x, 3 on 1.x   | either       |

One environment holds one SDK line, so at most two of them are installed at once.
"""

from __future__ import annotations

import importlib.util
from importlib.metadata import PackageNotFoundError, version

ALL_FRAMEWORKS = ("mcpserver", "sdk1", "fastmcp")

# The class each framework's servers are of, by the module it lives in (or under) and its name.
_SERVER_CLASSES = (
    ("mcpserver", "mcp.server.mcpserver", "MCPServer"),
    ("sdk1", "mcp.server.fastmcp", "FastMCP"),
    ("fastmcp", "fastmcp", "FastMCP"),
)


def framework_of(server: object) -> str | None:
    """`mcpserver`, `sdk1` or `fastmcp` for a server of a supported framework, else None."""
    for cls in type(server).__mro__:
        for framework, package, name in _SERVER_CLASSES:
            if cls.__name__ == name and (
                cls.__module__ == package or cls.__module__.startswith(f"{package}.")
            ):
                return framework
    return None


def sdk_major() -> int:
    """The major version of the installed MCP SDK (`mcp`): 1 or 2."""
    return int(version("mcp").split(".", 1)[0])


def fastmcp_major() -> int | None:
    """The major version of the installed standalone FastMCP (3 or 4), None without it."""
    if importlib.util.find_spec("fastmcp") is None:
        return None
    try:
        return int(version("fastmcp").split(".", 1)[0])
    except PackageNotFoundError:  # fastmcp-slim alone provides the module
        return int(version("fastmcp-slim").split(".", 1)[0])


def installed_frameworks() -> tuple[str, ...]:
    """The frameworks a server can be built on here: the SDK line's own, then FastMCP if installed."""
    own = "mcpserver" if sdk_major() >= 2 else "sdk1"
    return (own, "fastmcp") if fastmcp_major() is not None else (own,)

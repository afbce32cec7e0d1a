"""The one place x402-mcp leans on FastMCP details beyond its documented hooks.

FastMCP validates a tool's arguments only while it runs the tool (a pydantic
`TypeAdapter` over the function), but the gate must price a call, with the
arguments the function will receive, before anything runs. Those arguments are
read here from the function's own signature, without the parameters FastMCP
injects (`Context`, dependencies). The gate also sits in `FastMCP.middleware`,
the list FastMCP runs first to last, and the page's lifespan is entered with
the low-level server's (FastMCP's own lifespan is reference-counted and may be
left by another task than the one that entered it, which a task group cannot be).

FastMCP 3 runs the same hooks on MCP SDK 1.x, whose types use other field names (`isError`,
`structuredContent`) and whose request context holds `_meta` as a model: the converters
below put FastMCP's results and requests of either line into the gate's wire types.
`tests/frameworks/test_fastmcp_seam.py` fails loudly when a FastMCP release changes any of it.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any

import pydantic
from fastmcp import FastMCP
from fastmcp.server.dependencies import without_injected_parameters
from fastmcp.server.middleware import Middleware
from fastmcp.server.middleware.caching import ResponseCachingMiddleware
from fastmcp.server.providers.fastmcp_provider import FastMCPProviderTool
from fastmcp.tools.base import Tool, ToolResult
from fastmcp.tools.function_tool import FunctionTool
from mcp import types as sdk_types
from mcp.server.lowlevel.server import Server
from mcp_types import CallToolResult

from ._lowlevel import rebind_registrations
from .detect import sdk_major

ON_SDK2 = sdk_major() >= 2
"""FastMCP 4 (MCP SDK 2.x) rather than FastMCP 3 (SDK 1.x)."""


def tool_function(tool: Tool) -> Callable[..., Any] | None:
    """The Python function behind a FastMCP tool (None for tools that have none)."""
    fn = getattr(tool, "fn", None)
    return fn if callable(fn) else None


_MOUNT_DEPTH = 32
"""More nested mounts than any real server has: a cycle, refused rather than followed."""


async def defining_tool(tool: Tool) -> Tool:
    """The tool as the server that defines it registered it, with its function.

    A parent lists a mounted server's tool (`parent.mount(child)`) as a proxy that holds
    the child and the tool's name there, not the function (nor its `@paid` marker).
    """
    for _ in range(_MOUNT_DEPTH):
        if not isinstance(tool, FastMCPProviderTool) or tool._original_name is None:
            return tool
        inner = await tool._server.get_tool(tool._original_name)
        if not isinstance(inner, Tool):
            return tool
        tool = inner
    raise LookupError(f"tool {tool.name!r} is mounted more than {_MOUNT_DEPTH} servers deep")


def validated_tool_arguments(tool: Tool, arguments: dict[str, Any]) -> dict[str, Any]:
    """`arguments` of a call as the tool's function receives them, checked against its
    signature the way FastMCP checks them (unknown arguments refused, defaults filled).

    Raises:
        pydantic.ValidationError: the arguments do not fit the function's parameters.
        LookupError: the tool has no Python function.
    """
    fn = tool_function(tool)
    if fn is None:
        raise LookupError(f"tool {tool.name!r} has no Python function")
    model = _argument_model(fn)
    validated = model.model_validate(arguments)
    # One level deep, as the function receives them: a model argument stays a model.
    return {name: getattr(validated, name) for name in model.model_fields}


@functools.cache
def _argument_model(fn: Callable[..., Any]) -> type[pydantic.BaseModel]:
    fields: dict[str, Any] = {}
    # Annotations written as strings (`from __future__ import annotations`) resolved, as FastMCP does.
    hints = typing.get_type_hints(fn, include_extras=True)
    for name, parameter in inspect.signature(without_injected_parameters(fn)).parameters.items():
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        annotation = hints.get(name, Any)
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[name] = (annotation, default)
    model: type[pydantic.BaseModel] = pydantic.create_model(
        f"{getattr(fn, '__name__', 'tool')}_arguments",
        __config__=pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=True),
        **fields,
    )
    return model


def middleware_chain(server: FastMCP[Any]) -> list[Middleware]:
    """The server's middleware, outermost first (the list FastMCP itself runs)."""
    return server.middleware


def caches_responses(middleware: Middleware) -> bool:
    """Whether `middleware` answers calls from a cache (keyed without `_meta`, so without the payment)."""
    return isinstance(middleware, ResponseCachingMiddleware)


def lowlevel_server(server: FastMCP[Any]) -> Any:
    """The MCP SDK low-level `Server` a FastMCP server runs on (stdio, HTTP and in memory)."""
    lowlevel = server._mcp_server
    if not isinstance(lowlevel, Server):
        raise TypeError(f"FastMCP's _mcp_server is a {type(lowlevel).__name__}, not an MCP SDK Server")
    return lowlevel


def client_takes_apps(request_context: Any) -> bool:
    """Whether the client of a FastMCP request negotiated MCP Apps (the card).

    The SDK's `client_supports_apps` reads only `.session.client_capabilities` of a context
    that is not an `MCPServer` `Context`; FastMCP's request context has that session.
    """
    if request_context is None or not ON_SDK2:
        return False  # MCP SDK 1.x has no MCP Apps
    from mcp.server.apps import client_supports_apps
    from mcp.server.context import ServerRequestContext

    return client_supports_apps(typing.cast(ServerRequestContext[Any, Any], request_context))


def request_meta(request_context: Any) -> dict[str, Any]:
    """The `_meta` of the request (FastMCP lifts it off the message into the request context):
    a dict on SDK 2.x, a model with the custom keys as extras on 1.x."""
    meta = getattr(request_context, "meta", None)
    if meta is None:
        return {}
    if isinstance(meta, dict):
        return meta
    dumped: dict[str, Any] = meta.model_dump(by_alias=True, exclude_none=True)
    return dumped


def protocol_version(request_context: Any) -> str:
    """The protocol version of the request's session ("" before the handshake)."""
    version = getattr(request_context, "protocol_version", None)
    if isinstance(version, str):
        return version
    client = getattr(getattr(request_context, "session", None), "client_params", None)
    return str(getattr(client, "protocolVersion", "") or "")


def tool_result(result: CallToolResult) -> ToolResult:
    """The gate's result as FastMCP's `ToolResult`, written on the wire as the gate made it."""
    if ON_SDK2:
        return ToolResult.from_mcp_result(result)
    wire = result.model_dump(by_alias=True, exclude_none=True, mode="json")
    blocks = pydantic.TypeAdapter(list[sdk_types.ContentBlock]).validate_python(wire.get("content", []))
    return ToolResult(
        content=blocks,
        structured_content=wire.get("structuredContent"),
        meta=wire.get("_meta"),
        is_error=bool(wire.get("isError", False)),
    )


def call_tool_result(result: ToolResult) -> CallToolResult:
    """FastMCP's `ToolResult` of a run as the gate's wire type (either SDK line's content)."""
    return CallToolResult.model_validate(
        {
            "content": [
                block.model_dump(by_alias=True, exclude_none=True, mode="json") for block in result.content
            ],
            "structuredContent": result.structured_content,
            "isError": bool(getattr(result, "is_error", False)),
            "_meta": result.meta,
        }
    )


def rebind_tool_function(holders: list[object], old: Callable[..., Any], new: Callable[..., Any]) -> int:
    """Point each FastMCP `FunctionTool` among `holders` that runs `old` at `new` (`@paid` above
    `@mcp.tool`; see `rebind_registrations`); how many were."""
    return rebind_registrations(holders, FunctionTool, old, new)


async def functions_behind(tool: Tool) -> list[Callable[..., Any]]:
    """The functions a call of `tool` may run: through mounted servers, and through the tools
    it was made from (`Tool.from_tool(...)` keeps the original as `parent_tool`)."""
    found: list[Callable[..., Any]] = []
    current: object = tool
    for _ in range(_MOUNT_DEPTH):
        if not isinstance(current, Tool):
            break
        current = await defining_tool(current)
        fn = tool_function(current)
        if fn is not None:
            found.append(fn)
        current = getattr(current, "parent_tool", None)
    return found

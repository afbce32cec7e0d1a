"""The one place x402-mcp leans on MCP SDK 1.x `FastMCP` (`mcp.server.fastmcp`) details.

SDK 1.x FastMCP has no middleware and no extensions. The least invasive seam it leaves is
its low-level `Server`'s table of request handlers (`request_handlers`, keyed by request
type, the table the SDK itself fills with `@server.call_tool()` and friends): the door
puts one wrapper in front of the `tools/call` handler and one behind `tools/list`. A free
tool's call goes to FastMCP's own handler untouched; a paid one reaches it only through
the gate, with the request's `_meta` as the client sent it. Wrapping the registered
tool's function instead would leave FastMCP's result conversion after the gate, which
validates a challenge's `structuredContent` against the tool's output model and replaces
it with a validation error; patching the tool manager would touch every call of every tool.

Private names used here: `FastMCP._mcp_server` (the low-level server) and
`FastMCP._tool_manager` (the registry the tools' functions and argument models are in).
`tests/frameworks_sdk1/test_sdk1_seam.py` fails loudly when an SDK 1.x release moves them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.tools.base import Tool
from mcp.server.lowlevel.server import Server

from ._lowlevel import rebind_registrations

Handler = Callable[[Any], Awaitable[Any]]
"""A low-level request handler: the validated request in, a `ServerResult` out."""


def lowlevel_server(server: FastMCP[Any]) -> Server[Any, Any]:
    """The low-level `Server` an SDK 1.x FastMCP runs on (stdio, HTTP and in memory)."""
    lowlevel = server._mcp_server
    if not isinstance(lowlevel, Server):
        raise TypeError(f"FastMCP's _mcp_server is a {type(lowlevel).__name__}, not an MCP SDK Server")
    return lowlevel


def wrap_handler(server: FastMCP[Any], request_type: type, wrap: Callable[[Handler], Handler]) -> None:
    """Replace the low-level handler of `request_type` by `wrap(handler)`.

    Raises:
        LookupError: FastMCP registered no handler for that request type.
    """
    handlers = lowlevel_server(server).request_handlers
    if request_type not in handlers:
        raise LookupError(f"SDK 1.x FastMCP has no handler for {request_type.__name__}")
    handlers[request_type] = wrap(handlers[request_type])


def handler(server: FastMCP[Any], request_type: type) -> Handler | None:
    """The low-level handler of `request_type` now in place, if any."""
    return lowlevel_server(server).request_handlers.get(request_type)


def tool(server: FastMCP[Any], name: str) -> Tool | None:
    """The registered tool `name`, or None."""
    return server._tool_manager.get_tool(name)


def tool_functions(server: FastMCP[Any]) -> list[tuple[str, Callable[..., Any]]]:
    """Every registered tool's name and the Python function a call of it runs."""
    return [(registered.name, registered.fn) for registered in server._tool_manager.list_tools()]


def validated_tool_arguments(registered: Tool, arguments: dict[str, Any]) -> dict[str, Any]:
    """`arguments` as the tool's function will receive them, checked by FastMCP's own argument
    model for it (JSON strings parsed as FastMCP parses them; the `Context` is not among them).

    Raises:
        pydantic.ValidationError: the arguments do not fit the tool's parameters.
    """
    metadata = registered.fn_metadata
    return metadata.arg_model.model_validate(metadata.pre_parse_json(arguments)).model_dump_one_level()


def rebind_tool_function(holders: list[object], old: Callable[..., Any], new: Callable[..., Any]) -> int:
    """Point each SDK 1.x FastMCP tool among `holders` that runs `old` at `new` (`@paid` above
    `@server.tool()`; see `rebind_registrations`); how many were."""
    return rebind_registrations(holders, Tool, old, new)


def wrap_http_app(server: FastMCP[Any], outer: Callable[[], AbstractAsyncContextManager[None]]) -> None:
    """Run `outer()` around the lifespan of every streamable-HTTP app `server` makes (the app
    `server.streamable_http_app()` answers, which `server.run("streamable-http")` serves too).

    SDK 1.x enters the low-level lifespan once per HTTP session; the gate's must run once
    for the whole app. FastMCP offers no hook for it, so the server's `streamable_http_app`
    is replaced, on this one server object, by a function that wraps the app it makes.
    """
    make_app = server.streamable_http_app

    def streamable_http_app() -> Any:
        app = make_app()
        inner = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(asgi_app: Any) -> AsyncIterator[Any]:
            async with outer(), inner(asgi_app) as state:
                yield state

        app.router.lifespan_context = lifespan
        return app

    server.streamable_http_app = streamable_http_app  # type: ignore[method-assign]

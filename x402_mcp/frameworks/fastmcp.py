"""The FastMCP 4 door: `payments.install(mcp)` on a `fastmcp.FastMCP` server.

- The gate is a `Middleware` put first in the chain, so it runs outermost: a
  `ResponseCachingMiddleware` keys `tools/call` on the tool and its arguments
  only, and inside the gate it would hand a paid answer to the next unpaid
  caller. A cache placed before the gate is refused when the server starts.
- FastMCP lifts `_meta` off the message: the payment is read from the request
  context (`fastmcp_context.request_context.meta`).
- A `ServerExtension` advertises `capabilities.extensions["dev.x402-mcp/payments"]`;
  the page's lifespan (the stdio side port) is entered with the server's.
- The page is mounted with `custom_route`, so `mcp.http_app()` serves it beside `/mcp`.
- Paid calls are answered only while the server the payments are installed on runs:
  mounted into another server, the gate could not order that server's middleware.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastmcp import FastMCP
from fastmcp.server.dependencies import get_access_token
from fastmcp.server.extensions import ServerExtension
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import Tool, ToolResult
from mcp.server.auth.provider import principal_components
from mcp.types import CallToolRequestParams, CallToolResult, ListToolsRequest

from .. import _sdk
from ..callers import caller_identity
from ..challenge import failure_result, fit_output_schema
from ..errors import ConfigurationError
from ..gate import Gate, ToolCall
from ..guard import inside_gate
from ..pricing import PaidTool, paid_spec
from . import _fastmcp_seam as seam
from .coverage import check_at_start
from .elicitation import url_elicitation

IDENTIFIER = "dev.x402-mcp/payments"
logger = logging.getLogger("x402_mcp")


class FastMCPDoor:
    """Connects one `Gate` to one FastMCP server."""

    def __init__(self, gate: Gate, server: FastMCP[Any]) -> None:
        self.gate = gate
        self.server = server
        self.middleware = GateMiddleware(self)
        self.running = 0
        """How many runs of this server (its low-level lifespan) are live."""

    def attach(self) -> None:
        """Put the gate first in the chain, register the extension and mount the page.

        Raises:
            ConfigurationError: the gate is in the chain already.
        """
        chain = seam.middleware_chain(self.server)
        if any(isinstance(middleware, GateMiddleware) for middleware in chain):
            raise ConfigurationError("a Payments gate is installed on this FastMCP server already")
        chain.insert(0, self.middleware)
        self.server.add_extension(PaymentsExtension(self))
        self.gate.link.install(self._add_route, server_name=self.server.name)
        _sdk.wrap_lowlevel_lifespan(seam.lowlevel_server(self.server), self._lifespan)
        self.check_order()

    @contextlib.asynccontextmanager
    async def _lifespan(self) -> AsyncIterator[None]:
        # Middleware can be added until the server starts: check the order again now.
        self.check_order()
        await check_at_start(self.server, self.gate.asset.decimals, self.gate.asset.symbol)
        async with self.gate.link.lifespan():
            self.running += 1
            try:
                yield
            finally:
                self.running -= 1

    def check_order(self) -> None:
        """Refuse a chain where a response cache runs before (outside) the gate.

        Raises:
            ConfigurationError: naming the cache and where it must go.
        """
        for middleware in seam.middleware_chain(self.server):
            if middleware is self.middleware:
                return
            if seam.caches_responses(middleware):
                raise ConfigurationError(
                    f"{type(middleware).__name__} runs before the x402 payments gate on FastMCP server "
                    f"{self.server.name!r}: it keys tools/call on the tool and its arguments only, so it "
                    "would hand a paid answer to the next unpaid caller. Add it with "
                    "mcp.add_middleware(...) (after payments.install(mcp)), never in front of the gate"
                )
        raise ConfigurationError("the x402 payments gate was removed from the FastMCP middleware chain")

    def not_running(self) -> CallToolResult:
        """The answer to a paid call that reaches the gate while its own server is not running.

        That happens when the server is mounted into another one (`parent.mount(child)`):
        the parent's middleware, which this door cannot see or order, runs before the
        gate, and a response cache there would serve paid answers to unpaid callers.
        """
        logger.error(
            "a paid tool of FastMCP server %r was called while that server is not running "
            "(mounted into another server?); install Payments on the server you run",
            self.server.name,
        )
        return failure_result(
            f"This paid tool cannot run: its payments are installed on FastMCP server "
            f"{self.server.name!r}, which is not the server answering this call. Nothing was charged."
        )

    def _add_route(self, path: str, methods: list[str], app: Any) -> None:
        self.server.custom_route(path, methods=methods)(app)

    async def paid_tool(self, name: str) -> tuple[Tool, PaidTool] | None:
        listed = await self.server.get_tool(name)
        # A mounted server's tool is priced and its arguments read by the tool it runs.
        tool = None if listed is None else await seam.tool_behind(listed)
        fn = None if tool is None else seam.tool_function(tool)
        spec = None if fn is None else paid_spec(fn)
        return None if tool is None or spec is None else (tool, spec)


class GateMiddleware(Middleware):
    """The gate, as FastMCP's outermost middleware."""

    def __init__(self, door: FastMCPDoor) -> None:
        self.door = door

    async def on_call_tool(
        self,
        context: MiddlewareContext[CallToolRequestParams],
        call_next: CallNext[CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        found = await self.door.paid_tool(context.message.name)
        if found is None or inside_gate():
            # Free, or a mounted server's paid tool that its parent's gate let through already.
            return await call_next(context)
        tool, spec = found
        if not self.door.running:
            return ToolResult.from_mcp_result(self.door.not_running())
        if context.message.arguments is None:
            context.message.arguments = {}
        arguments = context.message.arguments
        request_context = context.fastmcp_context.request_context if context.fastmcp_context else None
        http_request = getattr(request_context, "request", None)
        meta = (getattr(request_context, "meta", None) or {}) if request_context is not None else {}

        async def run() -> CallToolResult:
            return _to_call_tool_result(await call_next(context))

        result = await self.door.gate.handle(
            ToolCall(
                # The name the client called (a mounted server's tools carry its prefix).
                tool=context.message.name,
                spec=spec,
                arguments=arguments,
                meta=meta,
                caller=caller_identity(_principal(), http_request),
                validate=lambda checked: seam.validated_tool_arguments(tool, checked),
                run=run,
                http_request=http_request,
                offer_link=None
                if request_context is None
                else url_elicitation(
                    request_context.session, request_context.protocol_version, request_context.request_id
                ),
            )
        )
        if tool.output_schema is not None:
            # Strict clients validate structuredContent against outputSchema, errors included.
            result = fit_output_schema(result)
        return ToolResult.from_mcp_result(result)

    async def on_list_tools(
        self,
        context: MiddlewareContext[ListToolsRequest],
        call_next: CallNext[ListToolsRequest, Sequence[Tool]],
    ) -> Sequence[Tool]:
        tools = await call_next(context)
        return [await self._priced(tool) for tool in tools]

    async def _priced(self, tool: Tool) -> Tool:
        fn = seam.tool_function(await seam.tool_behind(tool))
        spec = None if fn is None else paid_spec(fn)
        if spec is None:
            return tool
        listed: dict[str, Any] = {
            "name": tool.name,
            "description": tool.description,
            "inputSchema": copy.deepcopy(tool.parameters),
            "_meta": dict(tool.meta or {}),
        }
        self.door.gate.advertise(listed, spec)
        return tool.model_copy(
            update={
                "description": listed["description"],
                "parameters": listed["inputSchema"],
                "meta": listed["_meta"],
            }
        )


class PaymentsExtension(ServerExtension):
    """Advertises `capabilities.extensions["dev.x402-mcp/payments"]` (network, asset, payee)."""

    identifier = IDENTIFIER

    def __init__(self, door: FastMCPDoor) -> None:
        self.door = door

    def settings(self) -> dict[str, Any]:
        return self.door.gate.settings()


def _principal() -> str | None:
    token = get_access_token()
    return None if token is None else json.dumps(list(principal_components(token)), separators=(",", ":"))


def _to_call_tool_result(result: ToolResult) -> CallToolResult:
    return CallToolResult(
        content=list(result.content),
        structured_content=result.structured_content,
        is_error=result.is_error,
        _meta=result.meta,
    )

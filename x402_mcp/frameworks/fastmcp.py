"""The FastMCP door: `payments.install(mcp)` on a `fastmcp.FastMCP` server, FastMCP 4 (on MCP
SDK 2.x) or FastMCP 3 (on SDK 1.x): both run the same middleware hooks; what differs between
them is in `_fastmcp_seam`.

- The gate is a `Middleware` put first in the chain, so it runs outermost: a
  `ResponseCachingMiddleware` keys `tools/call` on the tool and its arguments
  only, and inside the gate it would hand a paid answer to the next unpaid
  caller. A cache placed before the gate is refused when the server starts.
- FastMCP lifts `_meta` off the message: the payment is read from the request
  context (`fastmcp_context.request_context.meta`).
- A `ServerExtension` advertises `capabilities.extensions["dev.x402-mcp/payments"]`;
  the page's lifespan (the stdio side port) is entered with the server's.
- The page is mounted with `custom_route`, so `mcp.http_app()` serves it beside `/mcp`.
- Prices are written into `tools/list` by tool name, from the server's own registry: a
  `ResponseCachingMiddleware` inside the gate answers with plain copies of the tools
  (their functions, and so their `@paid` markers, gone), which must still be priced.
- The MCP Apps payment card (page/card.py) is its `ui://` resource, `_meta.ui` on paid
  tools and, for a client that negotiated MCP Apps, the challenge as such a host shows it.
- Paid calls are answered only while the server the payments are installed on runs:
  mounted into another server, the gate could not order that server's middleware.
- FastMCP 3 has no `ServerExtension` and its SDK line no `capabilities.extensions` and no
  MCP Apps: there the door adds neither the extension, nor the card; everything else is the same.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.resources.base import ResourceResult
from fastmcp.server.dependencies import get_access_token
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools.base import Tool, ToolResult
from mcp_types import CallToolRequestParams, CallToolResult, ListToolsRequest, ReadResourceRequestParams

from ..core.callers import caller_identity, token_principal
from ..core.challenge import failure_result, fit_output_schema
from ..core.pricing import PaidTool, paid_spec
from ..errors import ConfigurationError
from ..gate import Gate, ToolCall
from ..gate.guard import inside_gate
from ..page.card import CARD_URI, PaymentCard, card_html, mark_listed
from . import _fastmcp_seam as seam
from ._lowlevel import wrap_lowlevel_lifespan
from ._runs import ServerRuns
from .elicitation import url_elicitation
from .sdk_line import IDENTIFIER

__all__ = ["IDENTIFIER", "FastMCPDoor", "GateMiddleware"]
logger = logging.getLogger("x402_mcp")


class FastMCPDoor:
    """Connects one `Gate` to one FastMCP server."""

    def __init__(self, gate: Gate, server: FastMCP[Any]) -> None:
        self.gate = gate
        self.server = server
        self.middleware = GateMiddleware(self)
        # The card's pieces, used by `GateMiddleware` (its MCPServer middleware is not used here).
        self.card = PaymentCard(gate, lambda name: None)
        self.runs = ServerRuns(gate, server)

    def attach(self) -> None:
        """Put the gate first in the chain, register the extension and mount the page.

        Raises:
            ConfigurationError: the gate is in the chain already.
        """
        chain = seam.middleware_chain(self.server)
        if any(isinstance(middleware, GateMiddleware) for middleware in chain):
            raise ConfigurationError("a Payments gate is installed on this FastMCP server already")
        chain.insert(0, self.middleware)
        lowlevel = seam.lowlevel_server(self.server)
        if seam.ON_SDK2:
            from ._fastmcp4 import PaymentsExtension
            from .handshake import AdvertiseOnInitialize

            self.server.add_extension(PaymentsExtension(self.gate.settings))
            lowlevel.middleware.append(AdvertiseOnInitialize(IDENTIFIER, self.gate.settings))
            self._add_card()
        self.gate.link.install(self._add_route, server_name=self.server.name)
        wrap_lowlevel_lifespan(lowlevel, self._lifespan)
        self.check_order()

    def _add_card(self) -> None:
        """The payment card's `ui://` resource (its `_meta.ui` is added per read, by the gate)."""
        from mcp.server.apps import APP_MIME_TYPE

        def payment_card() -> str:
            return card_html()

        self.server.resource(
            CARD_URI,
            name="x402-payment-card",
            title="Payment card",
            description="Shows a paid tool's price and follows its payment (MCP Apps).",
            mime_type=APP_MIME_TYPE,
        )(payment_card)

    @contextlib.asynccontextmanager
    async def _lifespan(self) -> AsyncIterator[None]:
        # Middleware can be added until the server starts: check the order again now.
        self.check_order()
        async with self.runs.run():
            yield

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

    async def paid_tool(self, name: str) -> tuple[Tool, Tool, PaidTool] | None:
        """Tool `name` as listed, as its own server defines it (a mounted server's), and its
        `@paid` marker; None for a free tool."""
        tool = await self.server.get_tool(name)
        if tool is None:
            return None
        defining = await seam.defining_tool(tool)
        fn = seam.tool_function(defining)
        spec = None if fn is None else paid_spec(fn)
        return None if spec is None else (tool, defining, spec)


class GateMiddleware(Middleware):
    """The gate, as FastMCP's outermost middleware."""

    def __init__(self, door: FastMCPDoor) -> None:
        self.door = door
        # How `coverage` recognises the gate in a middleware chain without importing this door
        # (as the SDK 1.x door marks its handler).
        self.x402_gate = door

    async def on_call_tool(
        self,
        context: MiddlewareContext[CallToolRequestParams],
        call_next: CallNext[CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        found = await self.door.paid_tool(context.message.name)
        if found is None or inside_gate():
            # Free, or a mounted server's paid tool that its parent's gate let through already.
            return await call_next(context)
        tool, defining, spec = found
        if not self.door.runs.live:
            return seam.tool_result(self.door.not_running())
        if context.message.arguments is None:
            context.message.arguments = {}
        arguments = context.message.arguments
        request_context = context.fastmcp_context.request_context if context.fastmcp_context else None
        http_request = getattr(request_context, "request", None)
        meta = seam.request_meta(request_context)

        async def run() -> CallToolResult:
            return seam.call_tool_result(await call_next(context))

        result = await self.door.gate.handle(
            ToolCall(
                # The name the client called (a mounted server's tools carry its prefix).
                tool=context.message.name,
                spec=spec,
                arguments=arguments,
                meta=meta,
                caller=caller_identity(token_principal(get_access_token()), http_request),
                validate=lambda checked: seam.validated_tool_arguments(defining, checked),
                run=run,
                http_request=http_request,
                offer_link=None
                if request_context is None
                else url_elicitation(
                    request_context.session,
                    seam.protocol_version(request_context),
                    request_context.request_id,
                ),
                tool_error=(ToolError,),
            )
        )
        if tool.output_schema is not None:
            # Strict clients validate structuredContent against outputSchema, errors included.
            result = fit_output_schema(result)
        if seam.client_takes_apps(request_context):
            shown = result.model_dump(by_alias=True, exclude_none=True, mode="json")
            result = CallToolResult.model_validate(await self.door.card.as_card(shown))
        return seam.tool_result(result)

    async def on_list_tools(
        self,
        context: MiddlewareContext[ListToolsRequest],
        call_next: CallNext[ListToolsRequest, Sequence[Tool]],
    ) -> Sequence[Tool]:
        tools = await call_next(context)
        request_context = context.fastmcp_context.request_context if context.fastmcp_context else None
        apps = seam.client_takes_apps(request_context)
        listed: list[Tool] = []
        for tool in tools:
            # By name, from the registry: a cached list holds copies without their functions.
            found = await self.door.paid_tool(tool.name)
            listed.append(tool if found is None else self._priced(tool, found[2], apps=apps))
        return listed

    async def on_read_resource(
        self,
        context: MiddlewareContext[ReadResourceRequestParams],
        call_next: CallNext[ReadResourceRequestParams, ResourceResult],
    ) -> ResourceResult:
        result = await call_next(context)
        if str(context.message.uri) != CARD_URI:
            return result
        request_context = context.fastmcp_context.request_context if context.fastmcp_context else None
        ui = await self.door.card.resource_ui(getattr(request_context, "request", None))
        contents = [
            content.model_copy(update={"meta": {**(content.meta or {}), "ui": ui}})
            for content in result.contents
        ]
        return result.model_copy(update={"contents": contents})

    def _priced(self, tool: Tool, spec: PaidTool, *, apps: bool) -> Tool:
        listed: dict[str, Any] = {
            "name": tool.name,
            "description": tool.description,
            "inputSchema": copy.deepcopy(tool.parameters),
            "_meta": dict(tool.meta or {}),
        }
        if tool.output_schema is not None:
            listed["outputSchema"] = tool.output_schema
        self.door.gate.advertise(listed, spec)
        if seam.ON_SDK2:  # the card exists on FastMCP 4 only
            mark_listed(listed, apps=apps)
        return tool.model_copy(
            update={
                "description": listed["description"],
                "parameters": listed["inputSchema"],
                "meta": listed["_meta"],
                "output_schema": listed.get("outputSchema"),
            }
        )

"""The `MCPServer` door: `MCPServer(..., extensions=[payments])`.

The SDK hands its `Extension` every `tools/call` through `intercept_tool_call`;
the door reads the call, and the SDK's tool registry (through `_sdk`), into a
`ToolCall`. Two server middlewares write prices into `tools/list` and keep
`structuredContent` off the errors of typed paid tools.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from mcp.server import MCPServer
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import authenticated_principal
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolRequestParams, CallToolResult

from ..core.callers import caller_identity
from ..core.challenge import fit_output_schema
from ..core.pricing import PaidTool, paid_spec
from ..gate import Gate, ToolCall
from ..page.card import PaymentCard
from . import _sdk
from .coverage import check_at_start
from .elicitation import url_elicitation
from .handshake import IDENTIFIER, AdvertiseOnInitialize


class MCPServerDoor:
    """Connects one `Gate` to one `MCPServer`."""

    def __init__(self, gate: Gate, server: MCPServer[Any]) -> None:
        self.gate = gate
        self.server = server

    def attach(self) -> None:
        """Add the middlewares, mount the page and wrap the lifespan (once per server)."""
        self.server.middleware.append(self._advertise_prices)
        self.server.middleware.append(self._fit_output_schemas)
        # Handshake-era clients (a classic `initialize`) get `capabilities.extensions` too.
        self.server.middleware.append(AdvertiseOnInitialize(IDENTIFIER, self.gate.settings))
        self.gate.link.install(self._add_route, server_name=self.server.name)
        _sdk.wrap_lifespan(self.server, self._lifespan)
        # The MCP Apps payment card: its ui:// resource, `_meta.ui` on paid tools, and the
        # challenge as an Apps host shows it (page/card.py). Inner to the two above.
        PaymentCard(self.gate, self.paid_tool).install(self.server)

    @contextlib.asynccontextmanager
    async def _lifespan(self) -> AsyncIterator[None]:
        # Tools are registered after the server is made: their prices are checked as it starts.
        await check_at_start(self.server, self.gate.asset.decimals, self.gate.asset.symbol)
        async with self.gate.running():
            yield

    def _add_route(self, path: str, methods: list[str], app: Any) -> None:
        self.server.custom_route(path, methods=methods)(app)

    def paid_tool(self, name: str) -> PaidTool | None:
        fn = _sdk.tool_function(self.server, name)
        return None if fn is None else paid_spec(fn)

    async def intercept(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        spec = self.paid_tool(params.name)
        if spec is None:
            return await call_next(ctx)
        name = params.name

        async def run() -> CallToolResult:
            result = await call_next(ctx)
            # The SDK's tool handler answers a `CallToolResult`; a serialized one is read back.
            return result if isinstance(result, CallToolResult) else CallToolResult.model_validate(result)

        if params.arguments is None:
            params.arguments = {}
        return await self.gate.handle(
            ToolCall(
                tool=name,
                spec=spec,
                arguments=params.arguments,
                meta=params.meta or {},
                caller=caller_identity(authenticated_principal(ctx), ctx.request),
                validate=lambda arguments: _sdk.validated_tool_arguments(self.server, name, arguments),
                run=run,
                http_request=ctx.request,
                offer_link=url_elicitation(ctx.session, ctx.protocol_version, ctx.request_id),
                tool_error=(ToolError,),
            )
        )

    async def _advertise_prices(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method == "tools/list" and isinstance(result, dict):
            for tool in result.get("tools", []):
                spec = self.paid_tool(tool.get("name", ""))
                if spec is not None:
                    self.gate.advertise(tool, spec)
        return result

    async def _fit_output_schemas(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        """Every error of a paid tool that declares an `outputSchema` (challenge, refusal,
        withheld output) leaves out `structuredContent`, which strict clients would
        validate against that schema and reject (see `fit_output_schema`)."""
        result = await call_next(ctx)
        name = (ctx.params or {}).get("name") if ctx.method == "tools/call" else None
        if not isinstance(name, str) or self.paid_tool(name) is None:
            return result
        if _sdk.tool_output_schema(self.server, name) is None:
            return result
        return fit_output_schema(result)

"""The MCP SDK 1.x door: `payments.install(server)` on an `mcp.server.fastmcp.FastMCP` server.

SDK 1.x FastMCP has no middleware and no extensions; the door puts the gate in front of
the low-level `tools/call` handler and writes prices behind `tools/list` (see
`_sdk1_seam` for why that is the least invasive seam it leaves):

- a call of a free tool goes straight to FastMCP's own handler;
- a call of a `@paid` tool is read into a `ToolCall` (its `_meta` straight off the request,
  custom keys included) and answered by the gate, which runs FastMCP's handler, with its
  argument and output validation, only for a call it lets through;
- errors of a paid tool with an `outputSchema` leave out `structuredContent`, as on the
  other doors (strict clients validate it, errors included);
- the page is mounted with `custom_route`, so `streamable_http_app()` serves it beside `/mcp`;
- the gate's lifespan (ledger, hooks, the stdio side port) runs once per server run: around
  the low-level server's lifespan over stdio and in memory, around the HTTP app's lifespan
  over HTTP, where SDK 1.x enters the low-level lifespan once per session.

What the older line lacks: `capabilities.extensions` (SDK 1.x has no such field; the price,
network, asset and payee are in each paid tool's `_meta` and challenge all the same) and the
MCP Apps card (SDK 1.x has no Apps support; the link and the page work as everywhere).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from mcp import types as sdk1_types
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp_types import CallToolResult

from ..core.callers import caller_identity, token_principal
from ..core.challenge import fit_output_schema
from ..core.pricing import PaidTool, paid_spec
from ..errors import ConfigurationError
from ..gate import Gate, ToolCall
from . import _sdk1_seam as seam
from ._lowlevel import wrap_lowlevel_lifespan
from ._runs import ServerRuns
from .elicitation import url_elicitation

__all__ = ["SDK1Door"]


class SDK1Door:
    """Connects one `Gate` to one MCP SDK 1.x `FastMCP` server."""

    def __init__(self, gate: Gate, server: FastMCP[Any]) -> None:
        self.gate = gate
        self.server = server
        self.runs = ServerRuns(gate, server)

    def attach(self) -> None:
        """Gate `tools/call`, price `tools/list`, mount the page and wrap the lifespans.

        Raises:
            ConfigurationError: the gate is installed on this server already.
        """
        if getattr(seam.handler(self.server, sdk1_types.CallToolRequest), "x402_gate", None) is not None:
            raise ConfigurationError("a Payments gate is installed on this FastMCP server already")
        seam.wrap_handler(self.server, sdk1_types.CallToolRequest, self._gated_call)
        seam.wrap_handler(self.server, sdk1_types.ListToolsRequest, self._priced_list)
        self.gate.link.install(self._add_route, server_name=self.server.name)
        wrap_lowlevel_lifespan(seam.lowlevel_server(self.server), self._run_lifespan)
        seam.wrap_http_app(self.server, self.runs.run)

    def _add_route(self, path: str, methods: list[str], app: Any) -> None:
        self.server.custom_route(path, methods=methods)(app)

    @contextlib.asynccontextmanager
    async def _run_lifespan(self) -> AsyncIterator[None]:
        """The low-level lifespan: the gate's, unless the HTTP app that runs this session holds it."""
        if self.runs.live:
            yield
            return
        async with self.runs.run():
            yield

    def paid_tool(self, name: str) -> PaidTool | None:
        registered = seam.tool(self.server, name)
        return None if registered is None else paid_spec(registered.fn)

    def _gated_call(self, handler: seam.Handler) -> seam.Handler:
        async def gated(request: sdk1_types.CallToolRequest) -> sdk1_types.ServerResult:
            params = request.params
            registered = seam.tool(self.server, params.name)
            spec = None if registered is None else paid_spec(registered.fn)
            if registered is None or spec is None:
                return await handler(request)  # type: ignore[no-any-return]
            if params.arguments is None:
                params.arguments = {}
            context = seam.lowlevel_server(self.server).request_context
            meta = params.meta.model_dump(by_alias=True, exclude_none=True) if params.meta else {}
            session = context.session
            client = session.client_params

            async def run() -> CallToolResult:
                answered = await handler(request)
                return from_sdk1(answered.root)

            result = await self.gate.handle(
                ToolCall(
                    tool=params.name,
                    spec=spec,
                    arguments=params.arguments,
                    meta=meta,
                    caller=caller_identity(token_principal(get_access_token()), context.request),
                    validate=lambda arguments: seam.validated_tool_arguments(registered, arguments),
                    run=run,
                    http_request=context.request,
                    offer_link=url_elicitation(
                        session, str(client.protocolVersion) if client else "", context.request_id
                    ),
                    tool_error=(ToolError,),
                )
            )
            if registered.output_schema is not None:
                result = fit_output_schema(result)
            return sdk1_types.ServerResult(to_sdk1(result))

        gated.x402_gate = self  # type: ignore[attr-defined]
        return gated

    def _priced_list(self, handler: seam.Handler) -> seam.Handler:
        async def priced(request: sdk1_types.ListToolsRequest) -> sdk1_types.ServerResult:
            answered = await handler(request)
            listed = answered.root
            if not isinstance(listed, sdk1_types.ListToolsResult):
                return answered  # type: ignore[no-any-return]
            tools = []
            for listed_tool in listed.tools:
                spec = self.paid_tool(listed_tool.name)
                if spec is None:
                    tools.append(listed_tool)
                    continue
                shown = listed_tool.model_dump(by_alias=True, exclude_none=True, mode="json")
                self.gate.advertise(shown, spec)
                tools.append(sdk1_types.Tool.model_validate(shown))
            return sdk1_types.ServerResult(listed.model_copy(update={"tools": tools}))

        return priced


def new_server(name: str) -> FastMCP[Any]:
    """An empty SDK 1.x FastMCP server called `name`, logging warnings and errors only."""
    return FastMCP(name, log_level="WARNING")


def from_sdk1(result: Any) -> CallToolResult:
    """An SDK 1.x `CallToolResult` (camelCase fields) as the gate's wire type."""
    return CallToolResult.model_validate(result.model_dump(by_alias=True, exclude_none=True, mode="json"))


def to_sdk1(result: CallToolResult) -> sdk1_types.CallToolResult:
    """The gate's result as SDK 1.x writes it on the wire."""
    return sdk1_types.CallToolResult.model_validate(
        result.model_dump(by_alias=True, exclude_none=True, mode="json")
    )

"""An MCP client for tests that run on either MCP SDK line: the SDK 2.x `Client`, or an SDK 1.x
`ClientSession` whose results are read as the wire types the rest of the tests use (`mcp_types`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from mcp_types import CallToolResult, ListToolsResult

from x402_mcp.frameworks.detect import sdk_major


class SDK1Client:
    """An MCP SDK 1.x `ClientSession` with the SDK 2.x `Client`'s result types."""

    def __init__(self, session: Any) -> None:
        self.session = session

    async def call_tool(
        self, name: str, arguments: dict[str, Any], meta: dict[str, Any] | None = None
    ) -> CallToolResult:
        result = await self.session.call_tool(name, arguments, meta=meta)
        return CallToolResult.model_validate(result.model_dump(by_alias=True, exclude_none=True, mode="json"))

    async def list_tools(self) -> ListToolsResult:
        listed = await self.session.list_tools()
        wire = listed.model_dump(by_alias=True, exclude_none=True, mode="json")
        return ListToolsResult.model_validate(wire)


@contextlib.asynccontextmanager
async def over_stdio(parameters: Any) -> AsyncIterator[Any]:
    """A handshake-era client of the server `parameters` (`StdioServerParameters`) starts."""
    if sdk_major() >= 2:
        from mcp import Client

        async with Client(parameters, mode="legacy") as client:
            yield client
        return
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    async with stdio_client(parameters) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield SDK1Client(session)


@contextlib.asynccontextmanager
async def in_memory(lowlevel: Any) -> AsyncIterator[SDK1Client]:
    """An SDK 1.x client connected in memory to a low-level server (SDK 1.x only)."""
    from mcp.shared.memory import create_connected_server_and_client_session

    async with create_connected_server_and_client_session(lowlevel) as session:
        yield SDK1Client(session)

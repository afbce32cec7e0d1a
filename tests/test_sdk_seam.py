"""The one place we touch MCP SDK internals: fail loudly when an SDK release moves them."""

from typing import Any

import pytest
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from pydantic import ValidationError

from x402_mcp import Payments, paid
from x402_mcp.chains.devchain import DevChain
from x402_mcp.frameworks._sdk import server_applying_extensions, tool_function, validated_tool_arguments


def test_payments_meets_its_server_and_reads_tool_markers(tmp_path: Any) -> None:
    chain = DevChain()
    payments = Payments(
        pay_to="0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
        network=chain.network,
        settlement=chain.settlement(),
        ledger=f"sqlite:///{tmp_path / 'l.sqlite'}",
    )
    server = MCPServer("seam", extensions=[payments])
    assert payments.server is server, "MCPServer no longer applies extensions from __init__ via tools()"

    @server.tool(name="renamed")
    @paid(price="0.01")
    def original() -> str:
        return ""

    assert tool_function(server, "renamed") is original
    assert tool_function(server, "missing") is None
    spec = payments.paid_tool("renamed")
    assert spec is not None and spec.atomic_price({}, 6) == 10_000


def test_no_server_outside_construction() -> None:
    assert server_applying_extensions() is None


def test_the_tools_own_argument_model_validates_a_call() -> None:
    server: MCPServer[Any] = MCPServer("seam")

    @server.tool()
    def report(pages: int, ctx: Context, title: str = "untitled") -> str:
        return ""

    # Coerced as the SDK will coerce it for the tool, defaults filled, the context left to the SDK.
    assert validated_tool_arguments(server, "report", {"pages": "3", "extra": 1}) == {
        "pages": 3,
        "title": "untitled",
    }
    with pytest.raises(ValidationError) as invalid:
        validated_tool_arguments(server, "report", {"pages": "many"})
    assert [error["loc"] for error in invalid.value.errors()] == [("pages",)]
    with pytest.raises(LookupError):
        validated_tool_arguments(server, "missing", {})


def test_paid_above_the_tool_decorator_points_the_registered_tool_at_its_guard() -> None:
    from x402_mcp.frameworks._sdk import tool_functions

    server: MCPServer[Any] = MCPServer("seam")

    async def bare(pages: int) -> str:
        return ""

    registered = server.tool()(bare)
    assert registered is bare, "MCPServer.tool() no longer returns the function it registered"
    guarded = paid(price="0.01")(registered)
    # The SDK's Tool keeps `fn` and runs it on each call; @paid above put its guard there.
    assert tool_function(server, "bare") is guarded and guarded is not bare
    assert dict(tool_functions(server)) == {"bare": guarded}
    tool = server._tool_manager.get_tool("bare")
    assert (
        tool is not None
        and tool.is_async
        and tool.fn_metadata.validate_arguments({"pages": "2"}) == {"pages": 2}
    )

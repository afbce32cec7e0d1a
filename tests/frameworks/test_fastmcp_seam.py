"""The FastMCP details the door leans on (`x402_mcp.frameworks._fastmcp_seam`): fail loudly
when a FastMCP release moves them."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastmcp import Context, FastMCP
from fastmcp.server.middleware import Middleware, MiddlewareContext
from fastmcp.server.middleware.caching import ResponseCachingMiddleware
from mcp import Client
from mcp.server import Server
from pydantic import Field, ValidationError

from x402_mcp import paid
from x402_mcp.frameworks import _fastmcp_seam as seam

pytestmark = pytest.mark.anyio


async def test_a_tool_keeps_its_function_and_its_marker_in_either_order() -> None:
    server: FastMCP[Any] = FastMCP("seam")

    @server.tool()
    @paid(price="0.01")
    def below(pages: int) -> str:
        return ""

    @paid(price="0.02")
    @server.tool()
    def above(pages: int) -> str:
        return ""

    @server.tool  # bare, as README writes it
    @paid(price="0.03")
    def bare(pages: int) -> str:
        return ""

    for name, function in (("below", below), ("above", above), ("bare", bare)):
        tool = await server.get_tool(name)
        assert tool is not None and seam.tool_function(tool) is function


async def test_arguments_are_read_as_the_function_receives_them() -> None:
    server: FastMCP[Any] = FastMCP("seam")

    @server.tool()
    def report(pages: Annotated[int, Field(le=100)], ctx: Context, title: str = "untitled") -> str:
        return ""

    tool = await server.get_tool("report")
    assert tool is not None
    # Coerced, defaults filled, FastMCP's injected Context left to FastMCP.
    assert seam.validated_tool_arguments(tool, {"pages": "3"}) == {"pages": 3, "title": "untitled"}
    for bad, where in (({"pages": "many"}, ("pages",)), ({"pages": 101}, ("pages",)), ({}, ("pages",))):
        with pytest.raises(ValidationError) as invalid:
            seam.validated_tool_arguments(tool, bad)
        assert [error["loc"] for error in invalid.value.errors()] == [where]
    # FastMCP refuses arguments the function does not take; so does the gate, before pricing.
    with pytest.raises(ValidationError):
        seam.validated_tool_arguments(tool, {"pages": 1, "extra": 1})


async def test_the_middleware_list_runs_first_to_last_and_caching_is_recognised() -> None:
    server: FastMCP[Any] = FastMCP("seam")
    order: list[str] = []

    class Probe(Middleware):
        def __init__(self, name: str) -> None:
            self.name = name

        async def on_call_tool(self, context: MiddlewareContext[Any], call_next: Any) -> Any:
            order.append(self.name)
            return await call_next(context)

    @server.tool()
    def ping() -> str:
        return "pong"

    server.add_middleware(Probe("second"))
    seam.middleware_chain(server).insert(0, Probe("first"))
    async with Client(seam.lowlevel_server(server)) as client:
        await client.call_tool("ping", {})
    assert order == ["first", "second"]
    assert seam.caches_responses(ResponseCachingMiddleware())
    assert not seam.caches_responses(Probe("x"))


async def test_the_low_level_servers_lifespan_is_entered_by_an_in_memory_run() -> None:
    server: FastMCP[Any] = FastMCP("seam")
    lowlevel = seam.lowlevel_server(server)
    assert isinstance(lowlevel, Server)
    entered: list[str] = []
    inner = lowlevel.lifespan

    def outer(app: Any) -> Any:
        entered.append("lifespan")
        return inner(app)

    lowlevel.lifespan = outer
    async with Client(lowlevel) as client:
        await client.list_tools()
    assert entered == ["lifespan"]


async def test_paid_above_is_put_in_the_registered_tool_and_mounts_resolve_to_it() -> None:
    from fastmcp.tools.base import Tool as FastMCPTool

    child: FastMCP[Any] = FastMCP("child")

    def bare(pages: int) -> str:
        return ""

    registered = child.tool()(bare)
    assert registered is bare, "FastMCP.tool() no longer returns the function it registered"
    guarded = paid(price="0.01")(registered)
    tool = await child.get_tool("bare")
    assert tool is not None and seam.tool_function(tool) is guarded

    parent: FastMCP[Any] = FastMCP("parent")
    parent.mount(child, namespace="kid")
    listed = await parent.get_tool("kid_bare")
    assert listed is not None and seam.tool_function(listed) is None, "mounted tools now carry fn"
    behind = await seam.defining_tool(listed)
    assert seam.tool_function(behind) is guarded
    made = FastMCPTool.from_tool(behind, name="other")
    assert guarded in await seam.functions_behind(made)

"""What the older line's doors lean on, beyond documented hooks: these fail loudly when an MCP SDK
1.x or FastMCP 3 release moves it (`frameworks/_sdk1_seam.py`, `frameworks/_fastmcp_seam.py`)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from mcp import types
from mcp.server.fastmcp import FastMCP
from mcp.server.lowlevel.server import Server

from x402_mcp.frameworks import _fastmcp_seam, _sdk1_seam

pytestmark = pytest.mark.anyio


def test_sdk1_fastmcp_keeps_its_low_level_server_and_its_request_handler_table() -> None:
    server: FastMCP[Any] = FastMCP("seam")
    lowlevel = _sdk1_seam.lowlevel_server(server)
    assert isinstance(lowlevel, Server)
    # The door wraps these two entries; FastMCP fills them when it is made.
    assert types.CallToolRequest in lowlevel.request_handlers
    assert types.ListToolsRequest in lowlevel.request_handlers
    assert callable(lowlevel.lifespan)
    assert inspect.signature(server.streamable_http_app).parameters == {}  # wrapped per server


def test_sdk1_fastmcp_tools_keep_their_function_and_argument_model() -> None:
    server: FastMCP[Any] = FastMCP("seam")

    @server.tool()
    def add(a: int, b: int = 2) -> int:
        return a + b

    registered = _sdk1_seam.tool(server, "add")
    assert registered is not None and registered.fn is add
    assert _sdk1_seam.tool_functions(server) == [("add", add)]
    assert _sdk1_seam.validated_tool_arguments(registered, {"a": "1"}) == {"a": 1, "b": 2}
    assert registered.output_schema is not None  # `-> int` is wrapped as {"result": ...} on 1.x


def test_a_registered_function_can_be_pointed_elsewhere() -> None:
    server: FastMCP[Any] = FastMCP("seam")

    def original(x: int) -> int:
        return x

    def replacement(x: int) -> int:
        return -x

    server.tool()(original)
    registered = _sdk1_seam.tool(server, "original")
    assert _sdk1_seam.rebind_tool_function([registered], original, replacement) == 1
    assert registered is not None and registered.fn is replacement


def test_fastmcp3_runs_on_the_sdk1_line_with_the_hooks_the_door_uses() -> None:
    from fastmcp import FastMCP as FastMCP3
    from fastmcp.tools.base import ToolResult

    assert not _fastmcp_seam.ON_SDK2
    server: FastMCP3[Any] = FastMCP3("seam")
    assert isinstance(_fastmcp_seam.middleware_chain(server), list)
    assert isinstance(_fastmcp_seam.lowlevel_server(server), Server)
    # FastMCP 3 has no `from_mcp_result`: the seam builds its results (and reads them back).
    assert not hasattr(ToolResult, "from_mcp_result")
    assert set(ToolResult.model_fields) >= {"content", "structured_content", "meta", "is_error"}


def test_the_request_meta_of_sdk1_is_a_model_with_custom_keys_as_extras() -> None:
    meta = types.RequestParams.Meta.model_validate({"x402/payment": {"x": 1}, "progressToken": 3})

    class Context:
        pass

    context = Context()
    context.meta = meta  # type: ignore[attr-defined]
    assert _fastmcp_seam.request_meta(context) == {"x402/payment": {"x": 1}, "progressToken": 3}

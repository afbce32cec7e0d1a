"""Fail closed on the older line: a `@paid` tool outside its gate refuses, a server whose paid
tools no gate answers is refused at start, and one `Payments` serves one server."""

from __future__ import annotations

from typing import Any

import pytest

from x402_mcp import ConfigurationError, Payments, paid
from x402_mcp.chains.devchain import DevChain
from x402_mcp.frameworks.choice import paid_server
from x402_mcp.frameworks.coverage import check_at_start, require_gate, ungated_paid_tools
from x402_mcp.ledger.sqlite import SQLiteLedger

from .conftest import connected

pytestmark = pytest.mark.anyio


def bare_server(framework: str) -> Any:
    if framework == "sdk1":
        from mcp.server.fastmcp import FastMCP

        return FastMCP("bare")
    from fastmcp import FastMCP as StandaloneFastMCP

    return StandaloneFastMCP("bare")


def add_paid_tools(server: Any) -> None:
    @server.tool()
    @paid(price="0.01")
    def below(x: int) -> int:
        return x

    @paid(price="0.01")
    @server.tool()
    def above(x: int) -> int:
        return x


@pytest.mark.parametrize("tool", ["below", "above"])
async def test_a_paid_tool_without_its_gate_refuses_to_run(framework: str, tool: str) -> None:
    server = bare_server(framework)
    add_paid_tools(server)
    async with connected(server) as client:
        result = await client.call_tool(tool, {"x": 1})
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "no x402 payments gate" in text and "payments.install" in text


async def test_a_server_whose_paid_tools_have_no_gate_is_refused_at_start(framework: str) -> None:
    server = bare_server(framework)
    add_paid_tools(server)
    assert sorted(await ungated_paid_tools(server)) == ["above", "below"]
    with pytest.raises(ConfigurationError, match=r"payments\.install"):
        await anyio_free_require_gate(server)


async def anyio_free_require_gate(server: Any) -> None:
    # `require_gate` runs its own event loop (it is for the CLI): run it off this one.
    import anyio

    await anyio.to_thread.run_sync(require_gate, server, "bare.py")


async def test_a_gated_server_checks_its_paid_tools_and_prices_at_start(
    framework: str, tmp_path: Any, old_line_chain: DevChain
) -> None:
    payments = Payments(
        pay_to=old_line_chain.new_account().address,
        network=old_line_chain.network,
        settlement=old_line_chain.settlement(),
        ledger=SQLiteLedger(tmp_path / "ledger.sqlite"),
    )
    server = paid_server("gated", payments, framework)
    add_paid_tools(server)
    assert await ungated_paid_tools(server) == []
    await check_at_start(server, 6, "USDC")
    # A token with fewer decimals cannot charge $0.01: refused as the server starts.
    with pytest.raises(ConfigurationError, match="cannot be charged in CENTS0"):
        await check_at_start(server, 0, "CENTS0")
    with pytest.raises(ConfigurationError, match="installed on"):
        payments.install(bare_server(framework))
    second = Payments(
        pay_to=old_line_chain.new_account().address,
        network=old_line_chain.network,
        settlement=old_line_chain.settlement(),
        ledger=SQLiteLedger(tmp_path / "second.sqlite"),
    )
    with pytest.raises(ConfigurationError, match="installed on this FastMCP server already"):
        second.install(server)

"""What a gated server checks as it starts (the gate's lifespan hook): every paid tool it lists
is answered by its gate, and every fixed price can be charged in the configured token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastmcp import FastMCP
from fastmcp.tools.base import Tool as FastMCPTool
from mcp import Client
from mcp.server import MCPServer

from x402_mcp import ConfigurationError, Payments, paid
from x402_mcp.chains.devchain import DevChain
from x402_mcp.client.payer import read_challenge, sign_payment
from x402_mcp.core.networks import Asset
from x402_mcp.frameworks._fastmcp_seam import lowlevel_server

pytestmark = pytest.mark.anyio
PAY_TO = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"


@pytest.fixture(scope="module")
def chain() -> DevChain:
    return DevChain()


def make_payments(chain: DevChain, tmp_path: Path, asset: Asset | None = None) -> Payments:
    return Payments(
        pay_to=PAY_TO,
        network=chain.network,
        settlement=chain.settlement(),
        asset=asset,
        ledger=f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        page_port=0,
    )


async def refusal_at_start(connectable: Any) -> ConfigurationError:
    """The `ConfigurationError` the server's start-up raised (alone or in a task group's group)."""
    try:
        async with Client(connectable):
            pass
    except BaseException as exc:  # the client's task group wraps what the server raised
        pending: list[BaseException] = [exc]
        while pending:
            current = pending.pop()
            if isinstance(current, ConfigurationError):
                return current
            pending.extend(getattr(current, "exceptions", ()))
            if current.__cause__ is not None:
                pending.append(current.__cause__)
        raise
    raise AssertionError("the server started")


@pytest.fixture
def payments(chain: DevChain, tmp_path: Path) -> Iterator[Payments]:
    snapshot = chain.snapshot()
    yield make_payments(chain, tmp_path)
    chain.revert(snapshot)


@pytest.mark.parametrize("framework", ["mcpserver", "fastmcp"])
async def test_a_fixed_price_the_configured_token_cannot_carry_stops_the_start(
    framework: str, chain: DevChain, tmp_path: Path
) -> None:
    assert chain.usdc is not None
    cents = Asset(chain.usdc, "USD Coin", decimals=2, symbol="CENTS")
    payments = make_payments(chain, tmp_path, cents)
    server: Any
    if framework == "mcpserver":
        server = MCPServer("cents", extensions=[payments])
    else:
        server = FastMCP("cents")
        payments.install(server)

    @server.tool()
    @paid(price="0.005")  # fine for USDC's 6 decimals, finer than this token's cent
    def report() -> str:
        return "ran"

    refused = await refusal_at_start(server if framework == "mcpserver" else lowlevel_server(server))
    assert "'report'" in str(refused) and "CENTS" in str(refused) and "smallest unit" in str(refused)


async def test_a_tool_made_from_a_paid_one_without_its_own_price_stops_the_start(payments: Payments) -> None:
    server: FastMCP[Any] = FastMCP("transformed")
    payments.install(server)

    @paid(price="0.05")
    def report(pages: int) -> str:
        return "ran"

    # A transformed copy lists under its own name; the gate would not see it as paid.
    server.add_tool(FastMCPTool.from_tool(FastMCPTool.from_function(report), name="summary"))
    refused = await refusal_at_start(lowlevel_server(server))
    assert "summary" in str(refused) and "not answered by its payments gate" in str(refused)


async def test_a_gated_parent_charges_for_the_paid_tools_of_a_mounted_child(
    payments: Payments, chain: DevChain
) -> None:
    runs: list[int] = []
    child: FastMCP[Any] = FastMCP("child")

    @paid(price="0.05")
    @child.tool()
    def report(pages: int) -> int:
        runs.append(pages)
        return pages

    parent: FastMCP[Any] = FastMCP("parent")
    parent.mount(child, namespace="kid")
    payments.install(parent)
    payer = chain.new_account(usdc="1")
    async with Client(lowlevel_server(parent)) as client:
        (listed,) = (await client.list_tools()).tools
        assert "Paid tool: $0.05 per call" in (listed.description or "")
        unpaid = await client.call_tool("kid_report", {"pages": 2})
        assert unpaid.is_error and runs == []
        payment = sign_payment(payer, read_challenge(unpaid))
        paid_call = await client.call_tool("kid_report", {"pages": 2}, meta={"x402/payment": payment.dump()})
        assert not paid_call.is_error, paid_call.content
    assert runs == [2]

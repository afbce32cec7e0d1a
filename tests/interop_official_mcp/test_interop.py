"""Both directions against the official x402 MCP package, settling on anvil.

(a) our `PayingClient` pays the official paid MCP server (FastMCP + `create_payment_wrapper`,
    with the official `HTTPFacilitatorClient`);
(b) the official `x402MCPClient` pays our server (`Payments`, `FacilitatorSettlement`).

Both directions settle through one facilitator server, ours (`our_facilitator`), on anvil.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from mcp.server import MCPServer

from tests.chains import AnvilChain
from tests.client.serving import serving
from tests.facilitator.serving import TOKEN
from x402_mcp import Payments, paid
from x402_mcp.client import Budget, BudgetExceeded, PayingClient
from x402_mcp.core.states import State
from x402_mcp.ledger.sqlite import SQLiteLedger
from x402_mcp.settlement import FacilitatorSettlement

from .official import official_client, official_server

pytestmark = [pytest.mark.anyio, pytest.mark.anvil]

PRICE = 10_000  # $0.01


def _official_env(anvil: AnvilChain, facilitator_url: str, pay_to: str) -> dict[str, str]:
    return {
        "FACILITATOR_URL": facilitator_url,
        "FACILITATOR_TOKEN": TOKEN,
        "TOKEN": anvil.usdc,
        "TOKEN_NAME": anvil.asset.name,
        "AMOUNT": str(PRICE),
        "PAY_TO": pay_to,
        "NETWORK": anvil.network,
    }


async def test_paying_client_pays_the_official_server(
    anvil: AnvilChain, official: Path, our_facilitator: str, tmp_path: Path
) -> None:
    payee = Account.create().address
    payer = anvil.new_account(usdc="1")
    budget = Budget(per_call="0.05", file=tmp_path / "budget.sqlite")
    async with (
        official_server(official, _official_env(anvil, our_facilitator, payee), tmp_path) as url,
        PayingClient(url, account=payer, budget=budget, assets=[anvil.asset], mode="legacy") as client,
    ):
        free = await client.call_tool("ping", {})
        answer = await client.call_tool("answer", {"question": "interop"})
        spending = await client.spending()

    assert (free.text, free.paid) == ("pong", False)
    assert not answer.is_error, answer.text
    assert "official answer to interop" in answer.text
    assert answer.receipt is not None and answer.receipt.success
    assert answer.receipt.transaction.startswith("0x")
    assert anvil.balance_of(payee) == PRICE
    assert anvil.balance_of(payer.address) == 1_000_000 - PRICE
    assert str(spending.total) == "0.01"


async def test_paying_client_refuses_the_official_server_over_budget(
    anvil: AnvilChain, official: Path, our_facilitator: str, tmp_path: Path
) -> None:
    payee = Account.create().address
    payer = anvil.new_account(usdc="1")
    budget = Budget(per_call="0.001", file=tmp_path / "budget.sqlite")
    async with (
        official_server(official, _official_env(anvil, our_facilitator, payee), tmp_path) as url,
        PayingClient(url, account=payer, budget=budget, assets=[anvil.asset], mode="legacy") as client,
    ):
        with pytest.raises(BudgetExceeded, match="per_call"):
            await client.call_tool("answer", {"question": "too dear"})
    assert anvil.balance_of(payee) == 0
    assert anvil.balance_of(payer.address) == 1_000_000


async def test_official_client_pays_our_server(
    anvil: AnvilChain, official: Path, our_facilitator: str, tmp_path: Path
) -> None:
    payee = Account.create().address
    payer = anvil.new_account(usdc="1")
    ledger = SQLiteLedger(tmp_path / "ledger.sqlite")
    remote = FacilitatorSettlement(our_facilitator, network=anvil.network, token=TOKEN)
    payments = Payments(
        pay_to=payee,
        network=anvil.network,
        asset=anvil.asset,  # the facilitator's network is a bare CAIP-2 id: name the token
        settlement=remote,
        ledger=ledger,
        public_url="http://pay.test",
    )
    server = MCPServer("ours", extensions=[payments])
    runs: list[str] = []

    @server.tool()
    @paid(price="0.01")
    async def answer(question: str) -> str:
        runs.append(question)
        return f"our answer to {question}"

    async with serving(server.streamable_http_app()) as base:
        outcome = await official_client(
            official, f"{base}/mcp", "answer", json.dumps({"question": "interop"}), payer_key=payer.key.hex()
        )
    await remote.aclose()

    assert outcome["is_error"] is False, outcome
    assert outcome["text"] == "our answer to interop"
    assert outcome["payment_made"] is True
    receipt = outcome["payment_response"]
    assert receipt["success"] is True and receipt["network"] == anvil.network
    assert runs == ["interop"]
    assert anvil.balance_of(payee) == PRICE
    assert anvil.balance_of(payer.address) == 1_000_000 - PRICE
    [settlement] = await ledger.settlements()
    assert (settlement.tx_hash, settlement.amount) == (receipt["transaction"], PRICE)
    request = await ledger.get(_request_id_of(await ledger.audit_trail()))
    assert request is not None and request.state is State.CONSUMED


def _request_id_of(trail: list[tuple[float, str | None, str, str]]) -> str:
    consumed = [request_id for _, request_id, event, _ in trail if event == "consume" and request_id]
    assert len(consumed) == 1, trail
    return consumed[0]

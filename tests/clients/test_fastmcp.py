"""fastmcp 4's `Client` in both protocol eras sees the price and link, pays, and gets the run,
from the sample served on each framework (MCPServer and FastMCP 4).

fastmcp raises a tool error as `ToolError(content[0].text)`: the challenge's JSON, so
what a person needs must be in `PaymentRequired.error`. On 2026-07-28 there is no
session, so only `payment_request_id` finds the payment; on the handshake era the
session is the caller, and a plain retry redeems.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.exceptions import ToolError

from servers import textkit
from tests.clients.conftest import Served, served
from x402_mcp import Payments
from x402_mcp.chains.devchain import DevChain
from x402_mcp.core.challenge import META_PRICE
from x402_mcp.core.states import State
from x402_mcp.frameworks.choice import FRAMEWORKS

pytestmark = pytest.mark.anyio
x402 = pytest.importorskip("x402", reason="the official x402 package is a test dependency")

TEXT = "Cats purr. Dogs bark."  # 4 words: the $0.01 floor
ARGUMENTS: dict[str, Any] = {"text": TEXT, "sentences": 1}
PRICE = 10_000


async def challenge_of(client: Client, arguments: dict[str, Any]) -> dict[str, Any]:
    """The PaymentRequired fastmcp's exception carries (it is built from content[0])."""
    with pytest.raises(ToolError) as raised:
        await client.call_tool("summarize", arguments)
    required: dict[str, Any] = json.loads(str(raised.value))
    return required


async def pay_the_link(sample: Served, hosted: str) -> None:
    """Pay the hosted link as an outside x402 HTTP client would (the official httpx client)."""
    from x402 import x402Client
    from x402.http.clients import x402HttpxClient
    from x402.mechanisms.evm import EthAccountSigner
    from x402.mechanisms.evm.exact import ExactEvmClientScheme

    official = x402Client()
    official.register("eip155:*", ExactEvmClientScheme(EthAccountSigner(sample.payer)))
    official.set_spend_controls(False)  # our dev-chain token is not in its table of known assets
    async with x402HttpxClient(official, timeout=10) as paying:
        response = await paying.get(hosted)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_fastmcp_client_sees_the_price_pays_and_gets_the_run(
    devchain: DevChain, tmp_path: Path, mode: str, framework: str
) -> None:
    def build(payments: Payments) -> Any:
        return textkit.build(payments, framework)

    async with served(build, devchain, tmp_path) as sample, Client(sample.url, mode=mode) as client:
        listed = {tool.name: tool for tool in await client.list_tools()}
        required = await challenge_of(client, ARGUMENTS)
        (accepted,) = required["accepts"]
        request_id = accepted["extra"]["paymentRequestId"]
        hosted = f"{sample.url.removesuffix('/mcp')}/pay/{request_id}"
        error = required["error"]
        assert accepted["amount"] == str(PRICE)
        assert "Payment required: $0.01 for an extractive summary" in error and hosted in error
        before = sample.balances()
        await pay_the_link(sample, hosted)
        assert sample.balances() == (before[0] - PRICE, before[1] + PRICE)

        if mode == "legacy":
            # A session: "call again" redeems, and the id is offered for other clients.
            assert f'(from another client, pass payment_request_id="{request_id}")' in error
            result = await client.call_tool("summarize", ARGUMENTS)
        else:
            # No session: the instruction names the id, and a plain retry only gets a new quote.
            assert f'call summarize again with payment_request_id="{request_id}"' in error
            fresh = await challenge_of(client, ARGUMENTS)
            assert fresh["accepts"][0]["extra"]["paymentRequestId"] != request_id
            result = await client.call_tool("summarize", {**ARGUMENTS, "payment_request_id": request_id})

    assert not result.is_error and result.structured_content == {"result": "Cats purr."}
    request = await sample.payments.ledger.get(request_id)
    assert request is not None and request.state is State.CONSUMED
    price = listed["summarize"].meta[META_PRICE] if listed["summarize"].meta else {}
    assert price["rule"] == "$0.001 per word, at least $0.01" and price["amount"] is None
    assert "Paid tool: $0.001 per word, at least $0.01" in (listed["summarize"].description or "")

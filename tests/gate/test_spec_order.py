"""`@paid(settle="after")`: the x402 spec's order (verify, run, settle on success)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from mcp import Client
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from tests.gate.conftest import PRICE, Shop, challenge_of, text_of
from x402_mcp import Payments, paid
from x402_mcp.challenge import META_PAYMENT, META_PAYMENT_RESPONSE
from x402_mcp.lifecycle import State
from x402_mcp.payer import sign_payment
from x402_mcp.wire import PaymentPayload, PaymentRequirements

pytestmark = pytest.mark.anyio


class Behaviour:
    fail = False
    front_run: tuple[PaymentPayload, PaymentRequirements] | None = None
    runs = 0


@pytest.fixture
async def spec_client(shop: Shop) -> AsyncIterator[tuple[Client, Behaviour]]:
    behaviour = Behaviour()
    payments = Payments(
        pay_to=shop.payee, network=shop.chain.network, settlement=shop.chain.settlement(), ledger=shop.ledger
    )
    server: MCPServer[Any] = MCPServer("spec", extensions=[payments])

    @server.tool()
    @paid(price="0.05", settle="after")
    async def premium(topic: str) -> str:
        behaviour.runs += 1
        if behaviour.fail:
            raise ToolError("premium is broken today")
        if behaviour.front_run is not None:
            # Someone submits the same authorization first, so our settlement must fail.
            receipt = await shop.chain.settlement().settle(*behaviour.front_run)
            assert receipt.success
        return f"secret insight on {topic}"

    async with Client(server) as client:
        yield client, behaviour


async def test_success_settles_after_the_run(spec_client: tuple[Client, Behaviour], shop: Shop) -> None:
    client, _ = spec_client
    required = challenge_of(await client.call_tool("premium", {"topic": "x"}))
    before = shop.balances()

    result = await client.call_tool(
        "premium", {"topic": "x"}, meta={META_PAYMENT: sign_payment(shop.payer, required).dump()}
    )

    assert not result.is_error, text_of(result)
    assert text_of(result) == "secret insight on x"
    assert (result.meta or {})[META_PAYMENT_RESPONSE]["success"] is True
    assert shop.balances() == (before[0] - PRICE, before[1] + PRICE)
    request = await shop.ledger.get(required.accepts[0].extra["paymentRequestId"])
    assert request is not None and request.state is State.CONSUMED


async def test_a_failing_tool_is_not_charged(spec_client: tuple[Client, Behaviour], shop: Shop) -> None:
    client, behaviour = spec_client
    required = challenge_of(await client.call_tool("premium", {"topic": "x"}))
    behaviour.fail = True
    before = shop.balances()

    result = await client.call_tool(
        "premium", {"topic": "x"}, meta={META_PAYMENT: sign_payment(shop.payer, required).dump()}
    )

    assert result.is_error and "premium is broken today" in text_of(result)
    assert shop.balances() == before
    request = await shop.ledger.get(required.accepts[0].extra["paymentRequestId"])
    assert request is not None and request.state is State.ISSUED


async def test_failed_settlement_withholds_the_output(
    spec_client: tuple[Client, Behaviour], shop: Shop
) -> None:
    client, behaviour = spec_client
    required = challenge_of(await client.call_tool("premium", {"topic": "x"}))
    payment = sign_payment(shop.payer, required)
    behaviour.front_run = (payment, required.accepts[0])

    result = await client.call_tool("premium", {"topic": "x"}, meta={META_PAYMENT: payment.dump()})

    assert behaviour.runs == 1
    assert result.is_error
    assert "secret insight" not in text_of(result)
    assert "Settlement failed" in text_of(result)
    assert challenge_of(result).error is not None and "Settlement failed" in (
        challenge_of(result).error or ""
    )
    request = await shop.ledger.get(required.accepts[0].extra["paymentRequestId"])
    assert request is not None and request.state is State.ISSUED

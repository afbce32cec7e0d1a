"""`@paid(settle="after", overlap=True)`: the settlement is sent while the tool runs.

Overlap is checked by the order of events, never by time: the tool below waits
for the settlement to begin (or to be recorded) before it ends, which in the
strict order would never happen. The settlement backend is the embedded
chain's, observed (and front-run on the same chain, or made to fail by the payer
spending everything first).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver.exceptions import ToolError

from tests.gate.conftest import PRICE, Shop, challenge_of, connectable, drain_payer, new_server, text_of
from x402_mcp import Payments, paid
from x402_mcp.client.payer import payment_meta, sign_payment
from x402_mcp.core.challenge import META_PAYMENT_RESPONSE
from x402_mcp.core.states import State
from x402_mcp.core.wire import (
    AnyPaymentPayload,
    PaymentRequirements,
    SettleResponse,
    SupportedResponse,
    VerifyResponse,
)
from x402_mcp.errors import ConfigurationError
from x402_mcp.settlement.base import Settlement

pytestmark = pytest.mark.anyio


@dataclass
class Observed:
    """The chain's own settlement backend, with what happens to it written down in order."""

    inner: Settlement
    events: list[str]
    front_run: bool = False
    drain: Any = None  # called before settling: the payer spends everything elsewhere
    began: anyio.Event = field(default_factory=anyio.Event)
    settled: anyio.Event = field(default_factory=anyio.Event)

    async def verify(self, payload: AnyPaymentPayload, requirements: PaymentRequirements) -> VerifyResponse:
        return await self.inner.verify(payload, requirements)

    async def settle(self, payload: AnyPaymentPayload, requirements: PaymentRequirements) -> SettleResponse:
        self.events.append("settle began")
        self.began.set()
        if self.front_run:
            # Someone submits the same authorization first, so ours fails on chain.
            assert (await self.inner.settle(payload, requirements)).success
        if self.drain is not None:
            self.drain()
        receipt = await self.inner.settle(payload, requirements)
        self.events.append("settled" if receipt.success else "settlement refused")
        self.settled.set()
        return receipt

    async def supported(self) -> SupportedResponse:
        return await self.inner.supported()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass
class Tool:
    events: list[str]
    wait_for: str = "began"  # "began": the settlement started; "recorded": it is in the ledger
    fail: bool = False
    hang: bool = False
    runs: int = 0
    began: anyio.Event = field(default_factory=anyio.Event)


@dataclass
class Overlap:
    client: Client
    payments: Payments
    backend: Observed
    tool: Tool
    events: list[str]

    async def paid_call(self, tool: str = "lookup") -> tuple[Any, str]:
        required = challenge_of(await self.client.call_tool(tool, {"topic": "x"}))
        request_id = required.accepts[0].extra["paymentRequestId"]
        payment = sign_payment(self.shop_payer, required)
        return await self.client.call_tool(tool, {"topic": "x"}, meta=payment_meta(payment)), request_id

    shop_payer: Any = None


@pytest.fixture
async def overlap(shop: Shop) -> AsyncIterator[Overlap]:
    events: list[str] = []
    backend = Observed(shop.chain.settlement(), events)
    payments = Payments(pay_to=shop.payee, network=shop.chain.network, settlement=backend, ledger=shop.ledger)
    server = new_server(shop.framework, "overlap", payments)
    tool = Tool(events)

    async def run(topic: str) -> str:
        tool.runs += 1
        events.append("tool began")
        tool.began.set()
        with anyio.fail_after(10):
            if tool.wait_for == "began":
                await backend.began.wait()
            else:
                await backend.settled.wait()
                # The settlement is recorded right after the backend answers.
                while (await payments.ledger.requests(states=[State.REDEEMING])) == []:  # noqa: ASYNC110 (polls the ledger)
                    await anyio.sleep(0.005)
        if tool.hang:
            await anyio.sleep_forever()
        events.append("tool ended")
        if tool.fail:
            raise ToolError("the lookup service is down")
        return f"looked up {topic}"

    @server.tool()
    @paid(price="0.05", settle="after", overlap=True)
    async def lookup(topic: str) -> str:
        return await run(topic)

    @server.tool()
    @paid(price="0.05", settle="after")
    async def strict(topic: str) -> str:
        tool.runs += 1
        events.append("tool ended")
        return f"strictly {topic}"

    async with Client(connectable(server)) as client:
        yield Overlap(client, payments, backend, tool, events, shop.payer)


async def test_the_settlement_begins_before_the_tool_ends_and_the_output_follows_it(
    overlap: Overlap, shop: Shop
) -> None:
    before = shop.balances()

    result, request_id = await overlap.paid_call()

    assert not result.is_error, text_of(result)
    assert text_of(result) == "looked up x"
    assert overlap.events.index("settle began") < overlap.events.index("tool ended")
    assert (result.meta or {})[META_PAYMENT_RESPONSE]["success"] is True
    assert shop.balances() == (before[0] - PRICE, before[1] + PRICE)
    stored = await overlap.payments.ledger.get(request_id)
    assert stored is not None and stored.state is State.CONSUMED


async def test_a_tool_without_overlap_keeps_the_strict_order(overlap: Overlap, shop: Shop) -> None:
    before = shop.balances()

    result, request_id = await overlap.paid_call("strict")

    assert not result.is_error, text_of(result)
    assert overlap.events == ["tool ended", "settle began", "settled"]
    assert shop.balances() == (before[0] - PRICE, before[1] + PRICE)
    stored = await overlap.payments.ledger.get(request_id)
    assert stored is not None and stored.state is State.CONSUMED


async def test_an_authorization_someone_else_settled_first_is_honoured_as_the_payment(
    overlap: Overlap, shop: Shop
) -> None:
    overlap.backend.front_run = True
    before = shop.balances()

    result, request_id = await overlap.paid_call()

    # Our own settlement was refused, but the token shows the payer's money reached the payee.
    assert not result.is_error, text_of(result)
    assert text_of(result) == "looked up x"
    assert shop.balances() == (before[0] - PRICE, before[1] + PRICE)
    stored = await overlap.payments.ledger.get(request_id)
    assert stored is not None and stored.state is State.CONSUMED


async def test_a_failed_settlement_withholds_the_output_as_in_the_strict_order(
    overlap: Overlap, shop: Shop
) -> None:
    overlap.backend.drain = lambda: drain_payer(shop)

    result, request_id = await overlap.paid_call()

    assert overlap.tool.runs == 1
    assert overlap.events.index("settle began") < overlap.events.index("tool ended")
    assert result.is_error
    text = text_of(result)
    assert "looked up" not in text
    assert "Settlement failed, so the result is withheld" in text
    assert "Settlement failed" in (challenge_of(result).error or "")
    stored = await overlap.payments.ledger.get(request_id)
    assert stored is not None and stored.state is State.ISSUED


async def test_a_tool_failing_after_its_payment_settled_keeps_it_paid_and_redeemable_once(
    overlap: Overlap, shop: Shop
) -> None:
    overlap.tool.wait_for = "recorded"
    overlap.tool.fail = True
    before = shop.balances()

    result, request_id = await overlap.paid_call()

    assert result.is_error
    text = text_of(result)
    assert "the lookup service is down" in text
    assert f'payment_request_id="{request_id}"' in text and "without a second charge" in text
    assert overlap.events.index("settled") < overlap.events.index("tool ended")
    charged = (before[0] - PRICE, before[1] + PRICE)
    assert shop.balances() == charged
    stored = await overlap.payments.ledger.get(request_id)
    assert stored is not None and stored.state is State.PAID

    # The retry the error names runs it, without a second charge ...
    overlap.tool.fail = False
    retry = await overlap.client.call_tool("lookup", {"topic": "x", "payment_request_id": request_id})
    assert not retry.is_error, text_of(retry)
    assert text_of(retry) == "looked up x"
    assert overlap.tool.runs == 2
    assert shop.balances() == charged
    # ... once.
    again = await overlap.client.call_tool("lookup", {"topic": "x", "payment_request_id": request_id})
    assert again.is_error and "looked up" not in text_of(again)
    assert overlap.tool.runs == 2
    assert shop.balances() == charged


async def test_a_call_cancelled_mid_run_keeps_a_settled_payment_paid_for_one_retry(
    overlap: Overlap, shop: Shop
) -> None:
    overlap.tool.wait_for = "recorded"
    overlap.tool.hang = True
    before = shop.balances()
    required = challenge_of(await overlap.client.call_tool("lookup", {"topic": "x"}))
    request_id = required.accepts[0].extra["paymentRequestId"]
    payment = payment_meta(sign_payment(shop.payer, required))

    with anyio.move_on_after(10) as scope:
        async with anyio.create_task_group() as group:

            async def call() -> None:
                await overlap.client.call_tool("lookup", {"topic": "x"}, meta=payment)

            group.start_soon(call)
            await overlap.backend.settled.wait()
            await overlap.tool.began.wait()
            await anyio.sleep(0.05)
            group.cancel_scope.cancel()
    assert not scope.cancelled_caught

    charged = (before[0] - PRICE, before[1] + PRICE)
    assert shop.balances() == charged
    with anyio.fail_after(10):
        while (  # noqa: ASYNC110 (polls the ledger)
            stored := await overlap.payments.ledger.get(request_id)
        ) is None or stored.state is not State.PAID:
            await anyio.sleep(0.01)
    overlap.tool.hang = False
    retry = await overlap.client.call_tool("lookup", {"topic": "x", "payment_request_id": request_id})
    assert not retry.is_error, text_of(retry)
    assert overlap.tool.runs == 2
    assert shop.balances() == charged
    consumed = await overlap.payments.ledger.get(request_id)
    assert consumed is not None and consumed.state is State.CONSUMED


def test_overlap_goes_with_settle_after_only() -> None:
    with pytest.raises(ConfigurationError, match='settle="after"'):
        paid(price="0.05", overlap=True)
    with pytest.raises(ConfigurationError, match="True or False"):
        paid(price="0.05", settle="after", overlap="yes")  # type: ignore[arg-type]
    assert paid(price="0.05", settle="after", overlap=True) is not None

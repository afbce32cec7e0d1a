"""Exactly once through the gate: one authorization pays for one request and one run, in
either settlement order and under any concurrency; a long run keeps its claim.

The tools here sleep while they run, so that concurrent calls overlap the run
(without the ledger's claims, every verify would pass before the first
settlement used the nonce).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult

from tests.gate.conftest import PRICE, Shop, challenge_of, text_of
from x402_mcp import paid
from x402_mcp.client.payer import sign_payment
from x402_mcp.core.challenge import META_PAYMENT, META_REQUEST_ID
from x402_mcp.core.evm import sign_authorization
from x402_mcp.core.states import State
from x402_mcp.core.wire import PaymentPayload, PaymentPayloadV1, PaymentRequired
from x402_mcp.schemes.exact.evm import requirements_for

pytestmark = pytest.mark.anyio

REPLAYED = "already presented for another payment request"


class Tools:
    """Paid tools added to the shop, each counting its runs."""

    def __init__(self, shop: Shop) -> None:
        self.runs: dict[str, int] = {}
        self.seconds = 0.3

        async def run(name: str) -> str:
            self.runs[name] = self.runs.get(name, 0) + 1
            await anyio.sleep(self.seconds)
            return f"{name} ran"

        @shop.server.tool()
        @paid(price="0.05", settle="after")
        async def spec_order(topic: str) -> str:
            return await run("spec_order")

        @shop.server.tool()
        @paid(price="0.05")
        async def settle_first(topic: str) -> str:
            return await run("settle_first")


@pytest.fixture
def tools(shop: Shop) -> Tools:
    return Tools(shop)


async def at_once(count: int, call: Callable[[], Awaitable[CallToolResult]]) -> list[CallToolResult]:
    results: list[CallToolResult] = []

    async def one() -> None:
        results.append(await call())

    with anyio.fail_after(120):
        async with anyio.create_task_group() as group:
            for _ in range(count):
                group.start_soon(one)
    return results


async def v1_payment(shop: Shop, client: Client, tool: str) -> dict[str, Any]:
    """An x402 v1 authorization for `tool`'s price: it names no payment request."""
    requirements = challenge_of(await client.call_tool(tool, {"topic": "t"})).accepts[0]
    signed = sign_authorization(shop.payer, requirements)
    return PaymentPayloadV1(scheme="exact", network=requirements.network, payload=signed).dump()


def successes(results: list[CallToolResult]) -> list[CallToolResult]:
    return [result for result in results if not result.is_error]


@pytest.mark.parametrize("tool", ["spec_order", "settle_first"])
async def test_one_v1_authorization_sent_eight_times_at_once_runs_the_tool_once(
    shop: Shop, client: Client, tools: Tools, tool: str
) -> None:
    payment = v1_payment(shop, client, tool)
    meta = {META_PAYMENT: await payment}
    payer_before, payee_before = shop.balances()

    results = await at_once(8, lambda: client.call_tool(tool, {"topic": "t"}, meta=meta))

    assert tools.runs == {tool: 1}
    [won] = successes(results)
    assert text_of(won) == f"{tool} ran"
    assert shop.balances() == (payer_before - PRICE, payee_before + PRICE)
    [consumed] = await shop.ledger.requests(states=[State.CONSUMED])
    lost = [result for result in results if result.is_error]
    assert len(lost) == 7
    for result in lost:
        # Refused as a replay; the request it paid for is not named (its id is a bearer capability).
        assert REPLAYED in text_of(result), text_of(result)
        assert consumed.id not in text_of(result)
        assert consumed.id not in str(result.structured_content)
    assert len(await shop.ledger.settlements()) == 1


async def test_one_payload_naming_its_request_sent_64_times_at_once_runs_the_tool_once(
    shop: Shop, client: Client, tools: Tools
) -> None:
    payment = shop.pay(await client.call_tool("settle_first", {"topic": "t"}))
    meta = {META_PAYMENT: payment.dump()}
    payer_before, payee_before = shop.balances()

    results = await at_once(64, lambda: client.call_tool("settle_first", {"topic": "t"}, meta=meta))

    assert tools.runs == {"settle_first": 1}
    assert len(successes(results)) == 1
    assert shop.balances() == (payer_before - PRICE, payee_before + PRICE)
    assert len(await shop.ledger.settlements()) == 1


async def test_the_same_authorization_for_a_second_request_is_refused_and_nothing_moves(
    shop: Shop, client: Client, tools: Tools
) -> None:
    tools.seconds = 0
    first = shop.pay(await client.call_tool("settle_first", {"topic": "t"}))
    paid_once = await client.call_tool("settle_first", {"topic": "t"}, meta={META_PAYMENT: first.dump()})
    assert not paid_once.is_error, text_of(paid_once)
    first_id = first.accepted.extra["paymentRequestId"]

    second = challenge_of(await client.call_tool("settle_first", {"topic": "t"}))
    second_id = second.accepts[0].extra["paymentRequestId"]
    # The request id is not covered by the signature: anyone can point the payload elsewhere.
    accepted = first.accepted.model_copy(
        update={"extra": {**first.accepted.extra, "paymentRequestId": second_id}}
    )
    redirected = PaymentPayload(resource=first.resource, accepted=accepted, payload=first.payload)
    balances = shop.balances()

    refused = await client.call_tool("settle_first", {"topic": "t"}, meta={META_PAYMENT: redirected.dump()})

    assert refused.is_error and REPLAYED in text_of(refused), text_of(refused)
    assert first_id not in text_of(refused)
    assert shop.balances() == balances
    assert tools.runs == {"settle_first": 1}
    request = await shop.ledger.get(second_id)
    assert request is not None and request.state is State.ISSUED
    # Refused before any settlement began: the second request's trail shows no attempt.
    assert [event for _, _, event, _ in await shop.ledger.audit_trail(second_id)] == ["issue", "refused"]


async def test_a_payment_whose_verify_was_refused_may_pay_its_own_request_later(
    shop: Shop, client: Client, tools: Tools
) -> None:
    tools.seconds = 0
    poor = shop.chain.new_account(usdc="0.01")
    challenge = challenge_of(await client.call_tool("settle_first", {"topic": "t"}))
    payment = sign_payment(poor, challenge)
    meta = {META_PAYMENT: payment.dump()}
    refused = await client.call_tool("settle_first", {"topic": "t"}, meta=meta)
    assert refused.is_error and tools.runs == {}, text_of(refused)

    shop.chain.mint(poor.address, "1")
    retried = await client.call_tool("settle_first", {"topic": "t"}, meta=meta)

    assert not retried.is_error, text_of(retried)
    assert tools.runs == {"settle_first": 1}


async def test_a_run_longer_than_its_lease_is_not_run_again_by_a_retry(
    shop: Shop, client: Client, tools: Tools
) -> None:
    shop.payments.redemption.lease_seconds = 0.6
    tools.seconds = 2.0
    request_id = (
        challenge_of(await client.call_tool("settle_first", {"topic": "t"}))
        .accepts[0]
        .extra["paymentRequestId"]
    )
    request = await shop.ledger.get(request_id)
    assert request is not None
    requirements = requirements_for(request, shop.payments.asset)
    payload = sign_payment(shop.payer, PaymentRequired(accepts=[requirements]))
    await shop.payments.collector.collect(request, payload, requirements, decimals=6)
    by_id = {META_REQUEST_ID: request_id}
    results: dict[str, CallToolResult] = {}

    async def call(name: str, delay: float) -> None:
        await anyio.sleep(delay)
        results[name] = await client.call_tool("settle_first", {"topic": "t"}, meta=by_id)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(call, "first", 0)
            group.start_soon(call, "retry", 1.2)  # two leases into the run

    assert tools.runs == {"settle_first": 1}
    assert not results["first"].is_error, text_of(results["first"])
    assert results["retry"].is_error and "in use by another call" in text_of(results["retry"])
    consumed = await shop.ledger.get(request_id)
    assert consumed is not None and consumed.state is State.CONSUMED


async def test_reconciliation_leaves_a_long_spec_order_run_alone(
    shop: Shop, client: Client, tools: Tools
) -> None:
    shop.payments.redemption.lease_seconds = 0.6
    shop.payments.reconciler.grace_seconds = 0.3
    tools.seconds = 1.5
    payment = shop.pay(await client.call_tool("spec_order", {"topic": "t"}))
    payer_before, payee_before = shop.balances()
    results: list[CallToolResult] = []

    async def call() -> None:
        results.append(
            await client.call_tool("spec_order", {"topic": "t"}, meta={META_PAYMENT: payment.dump()})
        )

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(call)
            await anyio.sleep(1.0)  # past the grace, mid-run
            reconciled = await shop.payments.reconciler.run()

    # The run's settler was alive: nothing was settled from under it, and its own settlement stood.
    assert reconciled.settled == [] and reconciled.released == []
    [result] = results
    assert not result.is_error, text_of(result)
    assert tools.runs == {"spec_order": 1}
    assert shop.balances() == (payer_before - PRICE, payee_before + PRICE)

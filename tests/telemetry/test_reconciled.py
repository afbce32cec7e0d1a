"""Events outside calls: a settlement cut short and finished from the chain, and expiry."""

from __future__ import annotations

import time

import pytest
from mcp import Client

from tests.gate.conftest import PRICE, Shop, challenge_of
from tests.telemetry.conftest import DrainedFirst
from tests.telemetry.test_hooks import Seen
from x402_mcp.client.payer import sign_payment
from x402_mcp.core.challenge import META_PAYMENT
from x402_mcp.core.states import State
from x402_mcp.core.wire import AnyPaymentPayload, PaymentRequirements, SettleResponse
from x402_mcp.errors import SettlementError

pytestmark = pytest.mark.anyio


class LostAnswer(DrainedFirst):
    """Settles on chain, then the answer is lost on its way back (a timeout, a crash)."""

    async def settle(self, payload: AnyPaymentPayload, requirements: PaymentRequirements) -> SettleResponse:
        assert (await self.inner.settle(payload, requirements)).success
        raise SettlementError("the settlement backend's answer never arrived")


async def test_a_settlement_finished_from_the_chain_is_reconciled_paid_and_counted_once(
    client: Client, shop: Shop
) -> None:
    seen = Seen(shop)
    for kind in ("paid", "settlement_failed", "reconciled"):
        shop.payments.on(kind, seen)
    shop.payments.collector.settlement = LostAnswer(shop.payments.collector.settlement, shop)
    required = challenge_of(await client.call_tool("answer", {"question": "q"}))
    request_id = required.accepts[0].extra["paymentRequestId"]
    payment = sign_payment(shop.payer, required)
    assert (await client.call_tool("answer", {"question": "q"}, meta={META_PAYMENT: payment.dump()})).is_error

    shop.payments.reconciler.grace_seconds = -1  # reconcile now, not after the grace period
    await shop.payments.upkeep(force=True)
    await seen.wait_for(2)

    (failed, _), (reconciled, state) = seen.events
    assert (failed.kind, failed.reason) == ("settlement_failed", "backend_error")
    assert (reconciled.kind, reconciled.paid, reconciled.request_id) == ("reconciled", True, request_id)
    assert state is State.PAID
    assert reconciled.amount == PRICE and reconciled.tx_hash
    counters = shop.payments.telemetry.metrics.registry.counters
    assert sum(counters["x402.requests.paid"].values()) == 1
    assert sum(counters["x402.revenue"].values()) == PRICE
    assert counters["x402.backend.failures"] == {(("backend", "settlement"), ("operation", "settle")): 1}


async def test_expired_requests_are_counted_by_the_sweep(client: Client, shop: Shop) -> None:
    for question in ("a", "b"):
        challenge_of(await client.call_tool("answer", {"question": question}))
    await shop.payments.upkeep(force=True)
    gauges = shop.payments.telemetry.metrics.registry.gauges
    assert gauges["x402.requests.open"] == {(("network", shop.chain.network),): 2}
    later = time.time() + 3600
    shop.payments.clock = lambda: later
    await shop.payments.upkeep(force=True)

    counters = shop.payments.telemetry.metrics.registry.counters
    assert counters["x402.requests.expired"] == {(("network", shop.chain.network),): 2}
    assert sum(counters["x402.requests.issued"].values()) == 2
    assert gauges["x402.requests.open"] == {(("network", shop.chain.network),): 0}

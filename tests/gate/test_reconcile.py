"""Reconciliation after a crash mid-settlement, on the embedded chain (no mock of chain or ledger).

A crash leaves a request in `settling` with the payer's signed payload. These
tests put it there the way the gate does before it dies, then let the
`Reconciler` ask the chain.
"""

from __future__ import annotations

import pytest
from mcp import Client

from tests.gate.conftest import PRICE, Shop, challenge_of, text_of
from x402_mcp.challenge import requirements_for
from x402_mcp.ledger.base import PaymentRequest
from x402_mcp.lifecycle import Event, State
from x402_mcp.reconcile import Reconciler, awaiting_reconciliation
from x402_mcp.settlement.local import LocalSettlement
from x402_mcp.wire import (
    AnyPaymentPayload,
    PaymentRequirements,
    SettleResponse,
    SupportedResponse,
    VerifyResponse,
)

pytestmark = pytest.mark.anyio


async def _cut_short(shop: Shop, client: Client) -> tuple[PaymentRequest, AnyPaymentPayload]:
    """A request in `settling` with its payload, as a crash after `begin_settlement` leaves it."""
    quoted = await client.call_tool("answer", {"question": "q"})
    payment = shop.pay(quoted)
    request_id = challenge_of(quoted).accepts[0].extra["paymentRequestId"]
    settling = await shop.ledger.transition(
        request_id, Event.BEGIN_SETTLEMENT, now=shop.payments.clock(), payload=payment.to_json()
    )
    return settling, payment


def _reconciler(shop: Shop, settlement: object | None = None, grace: float = -1) -> Reconciler:
    # A negative grace: every settling request counts as cut short right away.
    backend = settlement or shop.payments.settlement
    return Reconciler(
        shop.ledger, backend, shop.payments.asset, grace_seconds=grace, clock=shop.payments.clock
    )  # type: ignore[arg-type]


async def test_an_authorization_that_never_reached_the_chain_is_settled_and_redeemable(
    client: Client, shop: Shop
) -> None:
    request, _ = await _cut_short(shop, client)
    before = shop.balances()

    outcome = await _reconciler(shop).run()

    assert outcome.settled == [request.id]
    paid = await shop.ledger.get(request.id)
    assert paid is not None and paid.state is State.PAID and paid.tx_hash
    assert shop.balances() == (before[0] - PRICE, before[1] + PRICE)
    result = await client.call_tool("answer", {"question": "q", "payment_request_id": request.id})
    assert not result.is_error, text_of(result)
    assert shop.runs == {"answer": 1}
    assert await _reconciler(shop).run() == type(outcome)()  # nothing left to do


async def test_a_settlement_that_reached_the_chain_is_recorded_with_its_transaction(
    client: Client, shop: Shop
) -> None:
    request, payment = await _cut_short(shop, client)
    sent = await shop.payments.settlement.settle(payment, requirements_for(request, shop.payments.asset))
    assert sent.success
    before = shop.balances()

    outcome = await _reconciler(shop).run()

    assert outcome.settled == [request.id]
    paid = await shop.ledger.get(request.id)
    assert paid is not None and paid.state is State.PAID
    assert paid.tx_hash == sent.transaction
    [record] = await shop.ledger.settlements(request.id)
    assert (record.tx_hash, record.amount) == (sent.transaction, PRICE)
    assert shop.balances() == before  # nothing settled twice


async def test_a_settlement_still_within_its_grace_is_left_alone(client: Client, shop: Shop) -> None:
    request, _ = await _cut_short(shop, client)
    before = shop.balances()
    outcome = await _reconciler(shop, grace=300).run()
    assert outcome == type(outcome)()
    still = await shop.ledger.get(request.id)
    assert still is not None and still.state is State.SETTLING
    assert shop.balances() == before


async def test_an_expired_unused_authorization_makes_the_request_payable_again(
    client: Client, shop: Shop
) -> None:
    request, _ = await _cut_short(shop, client)
    later = shop.payments.clock() + 10_000  # past the authorization's validBefore
    settlement = LocalSettlement(
        shop.chain.w3, shop.chain._gas_account, shop.chain.network_info, lambda: later, lock=shop.chain.lock
    )
    before = shop.balances()
    outcome = await _reconciler(shop, settlement).run()
    assert outcome.released == [request.id]
    again = await shop.ledger.get(request.id)
    assert again is not None and again.state is State.ISSUED
    assert shop.balances() == before
    assert any(event == "reconciled" for _, _, event, _ in await shop.ledger.audit_trail(request.id))


class _NoChainAccess:
    """Our real local backend seen through the protocol alone, as a remote facilitator is:
    it can verify and settle, but cannot look an authorization up on chain."""

    def __init__(self, inner: LocalSettlement) -> None:
        self._inner = inner

    async def verify(self, payload: AnyPaymentPayload, requirements: PaymentRequirements) -> VerifyResponse:
        return await self._inner.verify(payload, requirements)

    async def settle(self, payload: AnyPaymentPayload, requirements: PaymentRequirements) -> SettleResponse:
        return await self._inner.settle(payload, requirements)

    async def supported(self) -> SupportedResponse:
        return await self._inner.supported()


async def test_without_chain_access_a_used_authorization_stays_awaiting_reconciliation(
    client: Client, shop: Shop
) -> None:
    request, payment = await _cut_short(shop, client)
    inner = shop.payments.settlement
    assert isinstance(inner, LocalSettlement)
    assert (await inner.settle(payment, requirements_for(request, shop.payments.asset))).success
    before = shop.balances()

    outcome = await _reconciler(shop, _NoChainAccess(inner)).run()

    assert outcome.pending == [request.id]
    still = await shop.ledger.get(request.id)
    assert still is not None and still.state is State.SETTLING
    pending = await awaiting_reconciliation(shop.ledger, now=shop.payments.clock(), grace_seconds=-1)
    assert [r.id for r in pending] == [request.id]
    assert shop.balances() == before
    # The chain-aware backend settles the question later.
    assert (await _reconciler(shop).run()).settled == [request.id]

"""Reconciliation releases a request only when the token shows its authorization moved nothing."""

from __future__ import annotations

import pytest
from mcp import Client

from tests.gate.conftest import PRICE, Shop
from tests.gate.test_reconcile import _cut_short, _reconciler
from x402_mcp.core.states import Event, State
from x402_mcp.core.wire import (
    AnyPaymentPayload,
    PaymentRequirements,
    SettleResponse,
    SupportedResponse,
    VerifyResponse,
)
from x402_mcp.settlement.base import OnChain
from x402_mcp.settlement.local import LocalSettlement

pytestmark = pytest.mark.anyio


class _SettlesButDenies:
    """Our real local backend, except that it reports every settlement it makes as reverted."""

    def __init__(self, inner: LocalSettlement) -> None:
        self._inner = inner

    async def verify(self, payload: AnyPaymentPayload, requirements: PaymentRequirements) -> VerifyResponse:
        return await self._inner.verify(payload, requirements)

    async def settle(self, payload: AnyPaymentPayload, requirements: PaymentRequirements) -> SettleResponse:
        real = await self._inner.settle(payload, requirements)
        assert real.success
        return real.model_copy(
            update={"success": False, "error_reason": "transaction_failed", "transaction": ""}
        )

    async def supported(self) -> SupportedResponse:
        return await self._inner.supported()

    async def lookup(self, payload: AnyPaymentPayload, requirements: PaymentRequirements) -> OnChain:
        return await self._inner.lookup(payload, requirements)


async def test_a_settlement_reported_failed_while_the_chain_shows_it_paid_is_recorded(
    client: Client, shop: Shop
) -> None:
    request, _ = await _cut_short(shop, client)
    inner = shop.payments.settlement
    assert isinstance(inner, LocalSettlement)
    before = shop.balances()

    outcome = await _reconciler(shop, _SettlesButDenies(inner)).run()

    assert outcome.settled == [request.id], outcome
    paid = await shop.ledger.get(request.id)
    assert paid is not None and paid.state is State.PAID and paid.tx_hash
    assert shop.balances() == (before[0] - PRICE, before[1] + PRICE), "charged once"


async def test_an_unreadable_stored_payload_is_kept_for_a_person_never_released(
    client: Client, shop: Shop
) -> None:
    quoted = await client.call_tool("answer", {"question": "q"})
    request_id = (quoted.meta or {}).get("x402/payment-request-id") or shop.pay(quoted).accepted.extra[
        "paymentRequestId"
    ]
    await shop.ledger.transition(
        request_id, Event.BEGIN_SETTLEMENT, now=shop.payments.clock(), payload='{"not": "a payment"}'
    )

    outcome = await _reconciler(shop).run()

    assert outcome.pending == [request_id]
    kept = await shop.ledger.get(request_id)
    assert kept is not None and kept.state is State.SETTLING
    notes = [detail for _, _, event, detail in await shop.ledger.audit_trail(request_id)]
    assert "the stored payment payload is unreadable" in notes

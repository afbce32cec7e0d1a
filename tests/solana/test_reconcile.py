"""Solana settlements cut short: sent once more to the facilitator, never guessed at."""

from __future__ import annotations

import json

import pytest
from mcp import Client

from x402_mcp.core.challenge import META_REQUEST_ID
from x402_mcp.core.states import Event, State
from x402_mcp.core.wire import SvmPaymentPayload, parse_payment_payload
from x402_mcp.gate.reconcile import Reconciler

from .conftest import SolanaShop

pytestmark = pytest.mark.anyio


async def _settling(shop: SolanaShop, client: Client) -> str:
    """A request in `settling` with a Solana payment, as a crash after `begin_settlement` leaves it."""
    quoted = await client.call_tool("answer", {"question": "q"})
    assert quoted.meta is not None
    request_id = str(quoted.meta[META_REQUEST_ID])
    payment = await shop.pay(quoted)
    await shop.ledger.transition(
        request_id, Event.BEGIN_SETTLEMENT, now=shop.payments.clock(), payload=json.dumps(payment)
    )
    return request_id


def _reconciler(shop: SolanaShop) -> Reconciler:
    # A negative grace: every settling request counts as cut short right away.
    payments = shop.payments
    return Reconciler(
        shop.ledger,
        payments.settlement,
        payments.asset,
        grace_seconds=-1,
        clock=payments.clock,
        solana=payments.also_accept,
    )


async def test_a_solana_payment_that_never_reached_the_facilitator_is_settled_and_redeemable(
    shop: SolanaShop,
) -> None:
    payer_before, payee_before = shop.balances()
    async with Client(shop.server) as client:
        request_id = await _settling(shop, client)
        outcome = await _reconciler(shop).run()
        redeemed = await client.call_tool("answer", {"question": "q", "payment_request_id": request_id})

    assert outcome.settled == [request_id]
    assert not redeemed.is_error
    assert shop.runs == ["q"]
    assert shop.balances() == (payer_before - 50_000, payee_before + 50_000)
    (record,) = await shop.ledger.settlements(request_id)
    assert record.network.startswith("solana:") and record.payer == str(shop.payer.pubkey())


async def test_a_solana_payment_that_already_landed_is_left_for_a_person(shop: SolanaShop) -> None:
    async with Client(shop.server) as client:
        request_id = await _settling(shop, client)
    request = await shop.ledger.get(request_id)
    assert request is not None and request.payload is not None
    # The settler sent it and died before recording it: the facilitator settles it for real...
    payload = parse_payment_payload(request.payload)
    assert isinstance(payload, SvmPaymentPayload)
    option = shop.payments.also_accept[0]
    fee_payer = await option.fee_payer()
    assert fee_payer is not None
    landed = await option.settlement.settle(payload, option.requirements(request, fee_payer))
    assert landed.success, landed
    balances = shop.balances()

    # ...and reconciliation cannot tell, so it moves nothing and marks nothing paid.
    outcome = await _reconciler(shop).run()
    assert outcome.pending == [request_id]
    assert shop.balances() == balances
    still = await shop.ledger.get(request_id)
    assert still is not None and still.state is State.SETTLING
    notes = [
        line for line in await shop.ledger.audit_trail(request_id) if line[2] == "awaiting_reconciliation"
    ]
    assert notes and "explorer" in notes[-1][3]

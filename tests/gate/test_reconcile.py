"""Reconciliation after a crash mid-settlement, on the embedded chain (no mock of chain or ledger).

A crash leaves a request in `settling` with the payer's signed payload. These
tests put it there the way the gate does before it dies, then let the
`Reconciler` ask the chain.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account
from mcp import Client
from mcp.server import MCPServer

from tests.chains import AnvilChain
from tests.facilitator.serving import Interposer, serving
from tests.gate.conftest import PRICE, Shop, challenge_of, text_of
from x402_mcp import Payments, paid
from x402_mcp.client.payer import payment_meta, read_challenge, sign_payment
from x402_mcp.core.states import Event, State
from x402_mcp.core.wire import (
    AnyPaymentPayload,
    PaymentRequirements,
    SettleResponse,
    SupportedResponse,
    VerifyResponse,
)
from x402_mcp.facilitator import facilitator_app
from x402_mcp.gate.reconcile import Reconciler, awaiting_reconciliation
from x402_mcp.ledger.base import PaymentRequest
from x402_mcp.ledger.sqlite import SQLiteLedger
from x402_mcp.schemes.exact.evm import requirements_for
from x402_mcp.settlement import FacilitatorSettlement
from x402_mcp.settlement.base import OnChain
from x402_mcp.settlement.local import LocalSettlement

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


async def test_a_facilitator_backend_without_rpc_url_leaves_a_used_authorization_awaiting_reconciliation(
    client: Client, shop: Shop
) -> None:
    request, payment = await _cut_short(shop, client)
    inner = shop.payments.settlement
    assert isinstance(inner, LocalSettlement)
    requirements = requirements_for(request, shop.payments.asset)
    assert (await inner.settle(payment, requirements)).success
    before = shop.balances()

    async with serving(facilitator_app(inner)) as url:
        remote = FacilitatorSettlement(url, network=shop.chain.network)
        assert await remote.lookup(payment, requirements) == OnChain("unknown")
        outcome = await _reconciler(shop, remote).run()
        await remote.aclose()

    assert outcome.pending == [request.id]
    still = await shop.ledger.get(request.id)
    assert still is not None and still.state is State.SETTLING
    trail = await shop.ledger.audit_trail(request.id)
    notes = [detail for _, _, event, detail in trail if event == "awaiting_reconciliation"]
    assert "authorization used, but this backend cannot find the transaction" in notes
    assert shop.balances() == before


@pytest.mark.anvil
@pytest.mark.parametrize("with_rpc", [True, False], ids=["paid-from-the-chain", "left-awaiting"])
async def test_a_facilitator_settlement_whose_answer_was_lost_is_finished_from_the_chain(
    anvil: AnvilChain, tmp_path: Path, with_rpc: bool
) -> None:
    # The gate's facilitator settles, but its answer never arrives: the gate keeps the request settling.
    lossy = Interposer(facilitator_app(anvil.settlement()), stall_after={"/settle": 30})
    async with serving(lossy) as url:
        gate_backend = FacilitatorSettlement(url, network=anvil.network_info, timeout=1.0)
        payments = Payments(
            pay_to=Account.create().address,
            network=anvil.network_info,
            settlement=gate_backend,
            ledger=SQLiteLedger(tmp_path / "ledger.sqlite"),
        )
        server = MCPServer("facilitated", extensions=[payments])
        runs: list[str] = []

        @server.tool()
        @paid(price="0.05")
        def answer(question: str) -> str:
            runs.append(question)
            return f"answer to {question}"

        payer = anvil.new_account("10")
        async with Client(server) as paying:
            quoted = await paying.call_tool("answer", {"question": "q"})
            request_id = challenge_of(quoted).accepts[0].extra["paymentRequestId"]
            payment = sign_payment(payer, read_challenge(quoted))
            lost = await paying.call_tool("answer", {"question": "q"}, meta=payment_meta(payment))
            assert lost.is_error and runs == []
            stuck = await payments.ledger.get(request_id)
            assert stuck is not None and stuck.state is State.SETTLING
            assert anvil.balance_of(payments.pay_to) == PRICE, "the facilitator did settle"
            with anvil.lock:
                [settle_tx] = anvil.w3.eth.get_block("latest")["transactions"]

            lossy.stall_after = {}  # the facilitator answers again
            backend = FacilitatorSettlement(
                url, network=anvil.network_info, rpc_url=anvil.rpc_url if with_rpc else None
            )
            reconciler = Reconciler(
                payments.ledger, backend, payments.asset, grace_seconds=-1, clock=payments.clock
            )
            outcome = await reconciler.run()
            await backend.aclose()
            after = await payments.ledger.get(request_id)
            assert after is not None
            if with_rpc:
                assert outcome.settled == [request_id]
                assert (after.state, after.tx_hash) == (State.PAID, settle_tx.to_0x_hex())
                redeemed = await paying.call_tool(
                    "answer", {"question": "q", "payment_request_id": request_id}
                )
                assert not redeemed.is_error, text_of(redeemed)
                assert runs == ["q"]
            else:
                assert outcome.pending == [request_id]
                assert after.state is State.SETTLING
                trail = await payments.ledger.audit_trail(request_id)
                notes = [detail for _, _, event, detail in trail if event == "awaiting_reconciliation"]
                assert "authorization used, but this backend cannot find the transaction" in notes
        await gate_backend.aclose()
    # With the chain to read, nothing is sent again; without, the retry is refused as a replay.
    assert [path for path, _ in lossy.seen].count("/settle") == (1 if with_rpc else 2)
    assert anvil.balance_of(payments.pay_to) == PRICE

"""`PayingClient` pays a paid tool once, within budget, and returns the receipt."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.client.conftest import PRICE, Shop, build_shop
from x402_mcp import paid
from x402_mcp.chains.devchain import DevChain
from x402_mcp.client import (
    BudgetExceeded,
    NoPayableOption,
    PaidResult,
    PayingClient,
    PaymentFailed,
    Spend,
    SpendState,
    SpendStore,
)
from x402_mcp.core.challenge import META_ERROR, META_PAYMENT_RESPONSE, META_REQUEST_ID
from x402_mcp.core.networks import BASE_SEPOLIA
from x402_mcp.core.states import State

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_paid_call_within_budget_moves_exactly_the_price(shop: Shop, mode: str) -> None:
    before = shop.balances()
    async with shop.client(shop.budget(per_call="0.10"), mode=mode) as client:
        answer = await client.call_tool("answer", {"question": "why"})
        spending = await client.spending()

    assert not answer.is_error, answer.text
    assert answer.text == "answer to why"
    assert shop.balances() == (before[0] - PRICE, before[1] + PRICE)
    assert answer.receipt is not None and answer.receipt.success
    assert answer.receipt.payer is not None and answer.receipt.payer.lower() == shop.payer.address.lower()
    assert answer.requirement is not None and answer.requirement.amount == str(PRICE)
    assert str(answer.cost) == "0.05"
    assert shop.reshape.paid_attempts == 1
    assert shop.runs == ["why"]
    assert (spending.total, spending.last_day, spending.payments, spending.pending) == (
        answer.cost,
        answer.cost,
        1,
        0,
    )
    assert answer.spend_id is not None
    recorded = await _spend(shop, answer.spend_id)
    assert recorded.state is SpendState.SPENT
    assert recorded.tx_hash == answer.receipt.transaction
    assert (recorded.amount, recorded.payee) == (PRICE, shop.payee)


async def test_free_tool_costs_nothing(shop: Shop) -> None:
    async with shop.client(shop.budget(per_call="0.10")) as client:
        pong = await client.call_tool("ping", {})
        spending = await client.spending()
    assert (pong.text, pong.paid, pong.receipt) == ("pong", False, None)
    assert spending.payments == 0
    assert shop.reshape.paid_attempts == 0


@pytest.mark.parametrize("shape", ["ours", "text", "meta"])
async def test_reads_the_challenge_wherever_the_server_puts_it(
    devchain: DevChain, tmp_path: Path, shape: str
) -> None:
    shop = build_shop(devchain, tmp_path, shape)
    async with shop.client(shop.budget(per_call="0.10"), mode="legacy") as client:
        unpaid = await client.client.call_tool("answer", {"question": "shape"})
        answer = await client.call_tool("answer", {"question": "shape"})

    assert unpaid.is_error
    # `answer` declares an outputSchema, so no shape carries structuredContent to the client.
    assert unpaid.structured_content is None
    assert (META_ERROR in (unpaid.meta or {})) == (shape != "text")
    assert not answer.is_error, answer.text
    assert answer.receipt is not None and answer.receipt.success
    assert shop.balances()[1] == PRICE


async def test_settlement_failure_keeps_counting_and_is_not_retried(shop: Shop) -> None:
    """The server's word that it did not settle frees nothing (see test_hostile for the chain)."""
    async with shop.client(shop.budget(per_call="0.10", total="0.05")) as client:
        with pytest.raises(PaymentFailed, match="did not take the payment") as failed:
            await client.call_tool("drained", {"question": "q"})
        spending = await client.spending()

    assert failed.value.result.is_error
    assert "withheld" in (failed.value.reason or "")
    assert shop.reshape.paid_attempts == 1  # one signature, never a second on our own
    assert shop.chain.balance_of(shop.payee) == 0
    assert (spending.total, spending.last_day, spending.pending) == (Decimal("0.05"), Decimal("0.05"), 1)
    [payment] = await _payments(shop)
    assert payment.state is SpendState.UNCERTAIN
    assert "withheld" in payment.detail


async def test_refused_payment_moves_nothing_but_stays_counted(shop: Shop) -> None:
    """A server that refuses the payment (here: the payer cannot cover it) moves no money, but
    holds a signed authorization: the budget counts it until the chain shows it expired."""
    broke = shop.chain.new_account(usdc="0.01")
    shop.payer = broke
    async with shop.client(shop.budget(per_call="0.10")) as client:
        with pytest.raises(PaymentFailed) as failed:
            await client.call_tool("answer", {"question": "q"})
        spending = await client.spending()
    assert failed.value.reason is not None
    assert (spending.total, spending.pending) == (Decimal("0.05"), 1)
    assert shop.runs == []
    assert shop.chain.balance_of(broke.address) == 10_000


async def test_asset_not_allowed_is_not_paid(shop: Shop) -> None:
    before = shop.balances()
    budget = shop.budget(per_call="1")
    # Left with the default assets (real USDC only), which the dev chain's token is not.
    async with PayingClient(shop.server, account=shop.payer, budget=budget) as client:
        with pytest.raises(NoPayableOption, match="not an allowed dollar token"):
            await client.call_tool("answer", {"question": "q"})
        spending = await client.spending()
    assert shop.balances() == before
    assert spending.payments == 0
    assert shop.reshape.paid_attempts == 0


async def test_network_not_allowed_is_not_paid(shop: Shop) -> None:
    async with shop.client(shop.budget(per_call="1"), networks=[BASE_SEPOLIA.caip2]) as client:
        with pytest.raises(NoPayableOption, match="network is not allowed"):
            await client.call_tool("answer", {"question": "q"})
    assert shop.reshape.paid_attempts == 0


async def test_redeemed_request_is_not_paid_again(shop: Shop) -> None:
    """After paying, the server's ledger shows one consumed request and one settlement."""
    async with shop.client(shop.budget(per_call="0.10")) as client:
        first = await client.call_tool("answer", {"question": "a"})
        second = await client.call_tool("answer", {"question": "b"})
    assert first.receipt is not None and second.receipt is not None
    assert first.receipt.transaction != second.receipt.transaction
    assert shop.chain.balance_of(shop.payee) == 2 * PRICE
    settlements = await shop.payments.ledger.settlements()
    assert len(settlements) == 2
    for settlement in settlements:
        request = await shop.payments.ledger.get(settlement_request_id(settlement.tx_hash, first, second))
        assert request is not None and request.state is State.CONSUMED


def settlement_request_id(tx_hash: str, *answers: PaidResult) -> str:
    for answer in answers:
        meta = answer.result.meta or {}
        if meta[META_PAYMENT_RESPONSE]["transaction"] == tx_hash:
            return str(meta[META_REQUEST_ID])
    raise AssertionError(f"no result settled in {tx_hash}")


async def _payments(shop: Shop) -> list[Spend]:
    store = SpendStore(shop.budget_file)
    await store.open()
    try:
        return await store.payments("default")
    finally:
        await store.close()


async def _spend(shop: Shop, spend_id: str) -> Spend:
    [found] = [payment for payment in await _payments(shop) if payment.id == spend_id]
    return found


async def test_a_tool_paid_before_is_reserved_ahead_and_misses_leave_no_trace(shop: Shop) -> None:
    """The second call of a tool reserves its last price while the unpaid call is out; when the
    server then asks for something else, or for nothing, that reservation disappears."""
    prices = {"cheap": "0.05", "dear": "0.07", "dearer": "0.09"}

    @shop.server.tool()
    @paid(price=lambda question: prices[question])
    async def priced(question: str) -> str:
        return f"priced answer to {question}"

    before = shop.balances()
    statements: list[str] = []
    async with shop.client(shop.budget(per_call="0.10", total="0.24")) as client:
        assert client.store._conn is not None
        client.store._conn.set_trace_callback(statements.append)
        answers = [await client.call_tool("priced", {"question": q}) for q in ("cheap", "cheap", "dear")]
        unpriced = await client.call_tool("priced", {"question": "unknown"})  # the price function fails
        spending = await client.spending()
        with pytest.raises(BudgetExceeded):  # 0.09 more does not fit, though 0.07 ahead did
            await client.call_tool("priced", {"question": "dearer"})
        after_refusal = await client.spending()
    assert [a.text for a in answers] == [f"priced answer to {q}" for q in ("cheap", "cheap", "dear")]
    assert unpriced.is_error and not unpriced.paid
    assert [str(a.cost) for a in answers] == ["0.05", "0.05", "0.07"]
    assert shop.balances() == (before[0] - 17 * PRICE // 5, before[1] + 17 * PRICE // 5)
    assert (spending.total, spending.payments, spending.pending) == (Decimal("0.17"), 3, 0)
    assert after_refusal == spending
    # Six reservations: the first call's; the second's, made ahead and used; the third's ahead
    # (0.05, discarded) and its own (0.07); the fourth's and fifth's ahead (0.07, discarded).
    assert sum(s.startswith("INSERT INTO payments") for s in statements) == 6
    assert sum(s.startswith("DELETE FROM payments") for s in statements) == 3
    recorded = await _payments(shop)
    assert sorted((p.state, str(p.usd)) for p in recorded) == [
        (SpendState.SPENT, "0.05"),
        (SpendState.SPENT, "0.05"),
        (SpendState.SPENT, "0.07"),
    ]

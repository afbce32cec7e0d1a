"""Every limit refuses before anything is signed, and moves no money; spending survives restarts."""

from __future__ import annotations

from decimal import Decimal

import anyio
import pytest
from eth_account import Account

from tests.client.conftest import PRICE, Shop
from x402_mcp.client import Budget, BudgetExceeded, NotConfirmed, PayeeNotAllowed, PaymentDeclined
from x402_mcp.core.wire import PaymentRequirements
from x402_mcp.errors import ConfigurationError

pytestmark = pytest.mark.anyio

DAY = 24 * 60 * 60


async def _refused(shop: Shop, budget: Budget, tool: str = "answer") -> PaymentDeclined:
    before, attempts = shop.balances(), shop.reshape.paid_attempts
    async with shop.client(budget) as client:
        with pytest.raises(PaymentDeclined) as refused:
            await client.call_tool(tool, {"question": "q"})
        spending = await client.spending()
    assert shop.balances() == before
    assert shop.reshape.paid_attempts == attempts  # nothing signed, nothing sent
    assert spending.pending == 0
    return refused.value


async def test_per_call_limit(shop: Shop) -> None:
    refused = await _refused(shop, shop.budget(per_call="0.10"), tool="dear")
    assert isinstance(refused, BudgetExceeded)
    assert refused.limit == "per_call"
    assert str(refused) == "the price $0.50 is above the budget's per_call limit of $0.10"


async def test_total_limit(shop: Shop) -> None:
    budget = shop.budget(total="0.10")
    async with shop.client(budget) as client:
        for question in ("one", "two"):
            assert (await client.call_tool("answer", {"question": question})).receipt is not None
    paid = shop.balances()

    refused = await _refused(shop, budget)

    assert isinstance(refused, BudgetExceeded) and refused.limit == "total"
    assert "in total to $0.15, above the budget's total limit of $0.10" in str(refused)
    assert paid[1] == 2 * PRICE


async def test_per_day_limit_holds_across_a_restart_and_rolls(shop: Shop) -> None:
    now = [1_800_000_000.0]
    budget = shop.budget(per_day="0.05")
    async with shop.client(budget, clock=lambda: now[0]) as client:
        assert (await client.call_tool("answer", {"question": "today"})).receipt is not None

    # A new process: same file, new client. Within 24 hours the day's limit still holds.
    now[0] += DAY - 1
    async with shop.client(budget, clock=lambda: now[0]) as client:
        with pytest.raises(BudgetExceeded) as refused:
            await client.call_tool("answer", {"question": "again"})
    assert refused.value.limit == "per_day"
    assert "in the last 24 hours" in str(refused.value)
    assert shop.reshape.paid_attempts == 1

    now[0] += 2  # the first payment has left the rolling day
    async with shop.client(budget, clock=lambda: now[0]) as client:
        answer = await client.call_tool("answer", {"question": "tomorrow"})
        spending = await client.spending()
    assert answer.receipt is not None
    assert (spending.total, spending.last_day) == (Decimal("0.10"), Decimal("0.05"))
    assert shop.chain.balance_of(shop.payee) == 2 * PRICE


async def test_payee_allowlist(shop: Shop) -> None:
    refused = await _refused(shop, shop.budget(per_call="1", payees=[Account.create().address]))
    assert isinstance(refused, PayeeNotAllowed)
    assert shop.payee in str(refused)


async def test_allowlisted_payee_is_paid(shop: Shop) -> None:
    async with shop.client(shop.budget(payees=[shop.payee.lower()])) as client:
        assert (await client.call_tool("answer", {"question": "q"})).receipt is not None
    assert shop.chain.balance_of(shop.payee) == PRICE


async def test_confirm_callback_refusing(shop: Shop) -> None:
    asked: list[PaymentRequirements] = []

    async def confirm(requirement: PaymentRequirements) -> bool:
        asked.append(requirement)
        return False

    refused = await _refused(shop, shop.budget(per_call="1", confirm=confirm))
    assert isinstance(refused, NotConfirmed)
    assert [(r.amount, r.pay_to) for r in asked] == [(str(PRICE), shop.payee)]


async def test_confirm_is_not_asked_about_what_the_budget_forbids(shop: Shop) -> None:
    asked: list[PaymentRequirements] = []

    async def confirm(requirement: PaymentRequirements) -> bool:
        asked.append(requirement)
        return True

    refused = await _refused(shop, shop.budget(per_call="0.01", confirm=confirm))
    assert isinstance(refused, BudgetExceeded)
    assert asked == []


async def test_confirm_callback_approving(shop: Shop) -> None:
    async def confirm(requirement: PaymentRequirements) -> bool:
        return True

    async with shop.client(shop.budget(confirm=confirm)) as client:
        assert (await client.call_tool("answer", {"question": "q"})).receipt is not None
    assert shop.chain.balance_of(shop.payee) == PRICE


async def test_concurrent_calls_cannot_overspend(shop: Shop) -> None:
    """Reservations are atomic: of three concurrent calls under a limit for two, one is refused."""
    outcomes: list[str] = []
    async with shop.client(shop.budget(total="0.10"), mode="legacy") as client:

        async def call(question: str) -> None:
            try:
                await client.call_tool("answer", {"question": question})
                outcomes.append("paid")
            except BudgetExceeded:
                outcomes.append("refused")

        async with anyio.create_task_group() as group:
            for question in ("a", "b", "c"):
                group.start_soon(call, question)
    assert sorted(outcomes) == ["paid", "paid", "refused"]
    assert shop.chain.balance_of(shop.payee) == 2 * PRICE


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"per_call": 0.1}, "float"),
        ({"total": "-1"}, "at least zero"),
        ({"per_day": "lots"}, "not a decimal number"),
        ({"payees": ["0xnope"]}, "not an EVM address"),
        ({"payees": "0x" + "11" * 20}, "collection of addresses"),
    ],
)
def test_invalid_budgets_are_refused(limits: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Budget(**limits)  # type: ignore[arg-type]


async def test_a_refusal_leaves_the_client_block_as_itself(shop: Shop) -> None:
    """Not wrapped in an ExceptionGroup by the MCP client's task group."""
    with pytest.raises(BudgetExceeded):
        async with shop.client(shop.budget(per_call="0.01")) as client:
            await client.call_tool("answer", {"question": "q"})

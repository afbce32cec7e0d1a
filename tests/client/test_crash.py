"""Crash safety of the budget: the reservation is on disk before a signed payment leaves,
and no crash, at any point of a paid call, frees budget that may have been spent."""

from __future__ import annotations

import signal
import sqlite3
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from eth_account import Account
from mcp.server import MCPServer
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Extension
from mcp.types import CallToolRequestParams

from tests.client.conftest import PRICE, Shop
from x402_mcp import Payments, paid
from x402_mcp.chains.devchain import DevChain
from x402_mcp.client import Budget, BudgetExceeded, PayingClient, SpendState, SpendStore
from x402_mcp.core.challenge import META_PAYMENT
from x402_mcp.core.wire import PaymentRequirements
from x402_mcp.ledger.sqlite import SQLiteLedger

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("point", ["signing", "sent", "settled", "sent-again"])
async def test_a_crash_mid_call_leaves_the_payment_counted(shop: Shop, tmp_path: Path, point: str) -> None:
    budget_file = tmp_path / "crashed.sqlite"
    done = await anyio.run_process(
        [sys.executable, "-m", "tests.client.crashing", str(budget_file), point], cwd=ROOT, check=False
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]

    store = SpendStore(budget_file)
    await store.open()
    try:
        payments = await store.payments("default")
        spending = await store.spending("default", now=payments[0].created_at)
    finally:
        await store.close()
    states = [SpendState.RESERVED] + ([SpendState.SPENT] if point == "sent-again" else [])
    assert [(p.state, p.usd, p.amount) for p in payments] == [(s, Decimal("0.05"), PRICE) for s in states]
    limit = Decimal("0.05") * len(states)
    assert (spending.total, spending.pending) == (limit, 1)

    # After the restart the budget is used up: nothing more is signed or paid.
    before = shop.balances()
    async with shop.client(Budget(total=limit, file=budget_file)) as client:
        with pytest.raises(BudgetExceeded):
            await client.call_tool("answer", {"question": "again"})
    assert shop.balances() == before
    assert shop.reshape.paid_attempts == 0


class Inspect(Extension):
    """On each paid retry, reads the budget file through a connection of its own."""

    identifier = "test.x402-mcp/inspect-budget"

    def __init__(self, budget_file: Path) -> None:
        self.budget_file = budget_file
        self.seen: list[list[tuple[str, str]]] = []

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if META_PAYMENT in (params.meta or {}):
            with sqlite3.connect(self.budget_file) as conn:
                rows = conn.execute("SELECT state, usd FROM payments ORDER BY rowid").fetchall()
            self.seen.append([(str(state), str(usd)) for state, usd in rows])
        return await call_next(ctx)


async def test_the_reservation_is_committed_and_synced_before_the_payment_leaves(
    devchain: DevChain, tmp_path: Path
) -> None:
    budget_file = tmp_path / "budget.sqlite"
    inspect = Inspect(budget_file)
    payments = Payments(
        pay_to=Account.create().address,
        network=devchain.network,
        settlement=devchain.settlement(),
        ledger=SQLiteLedger(tmp_path / "ledger.sqlite"),
        public_url="http://pay.test",
    )
    server = MCPServer("inspected", extensions=[inspect, payments])

    @server.tool()
    @paid(price="0.05")
    async def answer(question: str) -> str:
        return f"answer to {question}"

    statements: list[str] = []
    budget = Budget(per_call="0.10", file=budget_file)
    payer = devchain.new_account(usdc="1")
    async with PayingClient(server, account=payer, budget=budget, assets=[devchain.asset]) as client:
        conn = client.store._conn
        assert conn is not None
        conn.set_trace_callback(statements.append)
        for question in ("one", "two"):
            answer_ = await client.call_tool("answer", {"question": question})
            assert answer_.receipt is not None and answer_.receipt.success

    # Another connection already saw each reservation when the signed payment arrived.
    assert inspect.seen == [[("reserved", "0.05")], [("spent", "0.05"), ("reserved", "0.05")]]
    # And each reservation committed with synchronous=FULL: the state changes after it run
    # unsynced, and always switch back before anything else.
    modes = [s for s in statements if s.startswith("PRAGMA synchronous")]
    assert modes == ["PRAGMA synchronous=NORMAL", "PRAGMA synchronous=FULL"] * 2
    for index, statement in enumerate(statements):
        if statement.startswith("INSERT INTO payments"):
            before = [s for s in statements[:index] if s.startswith("PRAGMA synchronous")]
            assert not before or before[-1] == "PRAGMA synchronous=FULL"


async def test_a_state_change_waits_off_the_event_loop_while_another_process_writes(tmp_path: Path) -> None:
    store = SpendStore(tmp_path / "budget.sqlite")
    await store.open()
    requirement = PaymentRequirements.model_validate(
        {"scheme": "exact", "network": "eip155:84532", "amount": "50000", "asset": "0x" + "22" * 20,
         "payTo": "0x" + "11" * 20, "maxTimeoutSeconds": 60, "extra": {"name": "USDC", "version": "2"}}
    )  # fmt: skip
    try:
        spend_id = await store.reserve(
            Budget(file=store.path), requirement, usd=Decimal("0.05"), tool="t", now=1.0
        )
        other = sqlite3.connect(store.path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        ticks = 0
        async with anyio.create_task_group() as group:

            async def finish() -> None:
                await store.mark_spent(spend_id, tx_hash="0xabc", now=2.0)

            group.start_soon(finish)
            for _ in range(20):
                await anyio.sleep(0.01)
                ticks += 1  # the event loop keeps running while mark_spent waits for the lock
            other.execute("COMMIT")
        other.close()
        recorded = await store.get(spend_id)
    finally:
        await store.close()
    assert ticks == 20
    assert recorded is not None and (recorded.state, recorded.tx_hash) == (SpendState.SPENT, "0xabc")

"""What `Payments` owns, for how long: the ledger, the settlement client, the upkeep task.

`async with payments:` (and a server's lifespan, through `Gate.running`) opens the
ledger, runs upkeep as a task beside the calls, and on exit closes what the gate
made; a paid call never runs upkeep itself; the page opens the ledger through the
gate's lock, so a page request and a call that both come first open it once.
"""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import httpx
import pytest
from eth_account import Account
from mcp import Client

from tests.gate.conftest import Shop, challenge_of
from x402_mcp import Payments
from x402_mcp.chains.devchain import DevChain
from x402_mcp.core.states import PaymentRequest, State
from x402_mcp.errors import LedgerError
from x402_mcp.ledger import SQLiteLedger
from x402_mcp.page.serving import page_app
from x402_mcp.settlement.facilitator import FacilitatorSettlement

pytestmark = pytest.mark.anyio

PAYEE = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"


class CountingLedger(SQLiteLedger):
    """A real SQLite ledger that counts how often it is asked to open, and opens slowly (so two
    first uses overlap)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.opens = 0

    async def open(self) -> None:
        self.opens += 1
        await anyio.sleep(0.05)
        await super().open()


def overdue(payments: Payments, now: float) -> PaymentRequest:
    """An unpaid request of `payments`' server whose expiry has passed."""
    return PaymentRequest(
        id=f"pr_overdue{int(now * 1000)}",
        tool="answer",
        price=50_000,
        asset=payments.asset.address,
        network=payments.network.caip2,
        pay_to=payments.pay_to,
        caller=None,
        created_at=now - 700,
        expires_at=now - 100,
        max_timeout_seconds=600,
    )


async def test_a_page_request_and_a_call_coming_first_at_once_open_the_ledger_once(
    gate_chain: DevChain, tmp_path: Path
) -> None:
    ledger = CountingLedger(tmp_path / "ledger.sqlite")
    payments = Payments(
        pay_to=PAYEE, network=gate_chain.network, settlement=gate_chain.settlement(), ledger=ledger
    )
    page = httpx.AsyncClient(transport=httpx.ASGITransport(page_app(payments.gate)), base_url="http://t")
    answers: list[int] = []

    async def visit() -> None:
        answers.append((await page.get("/pay/pr_unknown", headers={"accept": "text/html"})).status_code)

    async with page, anyio.create_task_group() as group:
        group.start_soon(visit)
        group.start_soon(payments.open_ledger)
    assert answers == [404]  # the page answered, on the one opened ledger
    assert ledger.opens == 1
    await ledger.close()


async def test_async_with_payments_opens_runs_upkeep_and_closes_what_it_made(tmp_path: Path) -> None:
    payments = Payments(
        pay_to=PAYEE,
        network="base-sepolia",  # its default backend: the public facilitator, a client it makes
        ledger=f"sqlite:///{tmp_path / 'ledger.sqlite'}",
        upkeep_interval_seconds=1,
    )
    settlement = payments.settlement
    assert isinstance(settlement, FacilitatorSettlement)
    http = settlement._http
    http._http()  # its HTTP client, as the first verification would make it
    async with payments:
        stale = overdue(payments, time.time())
        await payments.ledger.issue(stale)
        # The upkeep task, not a call, expires it, within its interval (1 s) and a margin.
        for _ in range(50):
            await anyio.sleep(0.1)
            found = await payments.ledger.get(stale.id)
            if found is not None and found.state is State.EXPIRED:
                break
        assert found is not None and found.state is State.EXPIRED
    assert http._client is None  # closed: it was the gate's own
    with pytest.raises(LedgerError, match="not open"):
        await payments.ledger.get(stale.id)
    async with payments:  # and opens again
        assert await payments.ledger.get(stale.id) is not None


async def test_a_ledger_handed_in_stays_open_after_the_payments_close(
    gate_chain: DevChain, tmp_path: Path
) -> None:
    ledger = SQLiteLedger(tmp_path / "ledger.sqlite")
    payments = Payments(
        pay_to=Account.create().address,
        network=gate_chain.network,
        settlement=gate_chain.settlement(),
        ledger=ledger,
    )
    async with payments:
        pass
    assert await ledger.get("pr_none") is None  # still usable: its owner closes it
    await ledger.close()


async def test_a_paid_call_runs_no_upkeep(shop: Shop) -> None:
    async with Client(shop.connectable()) as client:  # the lifespan ran upkeep once, at start
        stale = overdue(shop.payments, time.time())
        await shop.ledger.issue(stale)
        challenge_of(await client.call_tool("answer", {"question": "why?"}))
        assert (await shop.ledger.get(stale.id)).state is State.ISSUED  # type: ignore[union-attr]
        await shop.payments.upkeep(force=True)
        assert (await shop.ledger.get(stale.id)).state is State.EXPIRED  # type: ignore[union-attr]

"""A settlement backend that raises something other than `SettlementError` (an author's own
backend, a library's timeout) is a backend crash like any other: the caller gets a tool error
naming the request, never an opaque "Internal server error" or the exception's words (which
may hold a node URL with its key), and a payment that may have moved money stays `settling`
for reconciliation, never back to `issued`. Both frameworks, through a real MCP client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests.gate.conftest import PRICE, Shop, challenge_of, connectable, new_server, text_of
from x402_mcp import Payments, Solana, paid
from x402_mcp.core.challenge import META_PAYMENT
from x402_mcp.core.states import Event, State
from x402_mcp.core.wire import (
    AnyPaymentPayload,
    PaymentRequirements,
    SettleResponse,
    SupportedResponse,
    VerifyResponse,
)
from x402_mcp.gate.reconcile import Reconciler
from x402_mcp.ledger.sqlite import SQLiteLedger
from x402_mcp.settlement.base import Settlement

pytestmark = pytest.mark.anyio

SOLANA_PAYEE = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"
SECRET = "https://user:hunter2-secret@rpc.example/v2/hunter2-secret"


class RaisingBackend:
    """The DevChain's settlement, but raising a plain exception at `step`:
    `verify`, `settle` (before sending anything) or `settled` (after the transfer was mined)."""

    def __init__(self, inner: Settlement, step: str) -> None:
        self.inner = inner
        self.step = step

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def verify(self, payload: AnyPaymentPayload, requirements: PaymentRequirements) -> VerifyResponse:
        if self.step == "verify":
            raise RuntimeError(f"node {SECRET} timed out")
        return await self.inner.verify(payload, requirements)

    async def settle(self, payload: AnyPaymentPayload, requirements: PaymentRequirements) -> SettleResponse:
        if self.step == "settle":
            raise ConnectionResetError(f"node {SECRET} reset the connection")
        receipt = await self.inner.settle(payload, requirements)
        if self.step == "settled":
            raise TimeoutError(f"node {SECRET} did not answer in time")
        return receipt

    async def supported(self) -> SupportedResponse:
        return await self.inner.supported()


@pytest.fixture(params=["verify", "settle", "settled"])
async def raising(
    request: pytest.FixtureRequest, shop: Shop, tmp_path: Path
) -> AsyncIterator[tuple[Shop, Payments, Client, list[str]]]:
    payments = Payments(
        pay_to=shop.payee,
        network=shop.chain.network,
        settlement=RaisingBackend(shop.chain.settlement(), request.param),
        ledger=SQLiteLedger(tmp_path / "raising.sqlite"),
    )
    server = new_server(shop.framework, "raising", payments)
    runs: list[str] = []

    @server.tool()
    @paid(price="0.05")
    def answer(question: str) -> str:
        runs.append(question)
        return "answered"

    async with Client(connectable(server)) as client:
        yield shop, payments, client, runs
    await payments.ledger.close()


async def test_a_backend_raising_a_plain_exception_is_a_named_crash_that_keeps_any_moved_money(
    raising: tuple[Shop, Payments, Client, list[str]],
) -> None:
    shop, payments, client, runs = raising
    step = payments.settlement.step  # type: ignore[attr-defined]
    challenge = await client.call_tool("answer", {"question": "q"})
    payer_before, payee_before = shop.balances()

    result = await client.call_tool(
        "answer", {"question": "q"}, meta={META_PAYMENT: shop.pay(challenge).dump()}
    )

    text = text_of(result)
    assert result.is_error, text
    assert "settlement backend failed" in text, text
    assert "hunter2" not in text and "rpc.example" not in text
    assert runs == []
    [stored] = await payments.ledger.requests()
    assert stored.id in text, "the caller is told which request to follow up"
    moved = shop.balances() != (payer_before, payee_before)
    if step == "settled":
        assert moved and shop.balances() == (payer_before - PRICE, payee_before + PRICE)
    else:
        assert not moved
    if step == "verify":
        assert stored.state is State.ISSUED  # nothing was sent: it may be paid again
    else:
        assert stored.state is State.SETTLING, "money may have moved: kept for reconciliation"


class FirstSettleRaises:
    """The DevChain's settlement whose first `settle` raises a plain exception."""

    def __init__(self, inner: Settlement) -> None:
        self.inner = inner
        self.raised = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def settle(self, payload: AnyPaymentPayload, requirements: PaymentRequirements) -> SettleResponse:
        if not self.raised:
            self.raised = True
            raise ConnectionResetError(f"node {SECRET} reset the connection")
        return await self.inner.settle(payload, requirements)


async def test_one_request_whose_backend_raises_does_not_stop_reconciling_the_others(
    client: Client, shop: Shop
) -> None:
    """A plain exception for one cut-short settlement leaves it awaiting reconciliation and
    the pass goes on: otherwise every pass would stop at the same request, and the payments
    behind it would never be recorded."""
    cut_short = []
    for _ in range(2):
        quoted = await client.call_tool("answer", {"question": "q"})
        request_id = challenge_of(quoted).accepts[0].extra["paymentRequestId"]
        cut_short.append(
            await shop.ledger.transition(
                request_id,
                Event.BEGIN_SETTLEMENT,
                now=shop.payments.clock(),
                payload=shop.pay(quoted).to_json(),
            )
        )
    before = shop.balances()
    reconciler = Reconciler(
        shop.ledger,
        FirstSettleRaises(shop.payments.settlement),  # type: ignore[arg-type]
        shop.payments.asset,
        grace_seconds=-1,
        clock=shop.payments.clock,
    )

    outcome = await reconciler.run()

    assert len(outcome.pending) == 1 and len(outcome.settled) == 1, outcome
    assert {*outcome.pending, *outcome.settled} == {request.id for request in cut_short}
    assert shop.balances() == (before[0] - PRICE, before[1] + PRICE)
    [still] = outcome.pending
    stored = await shop.ledger.get(still)
    assert stored is not None and stored.state is State.SETTLING


class NoFeePayer:
    """A Solana facilitator whose fee-payer question raises a plain exception."""

    async def fee_payer(self, network: str) -> str:
        raise RuntimeError(f"facilitator {SECRET} is down")


async def test_a_solana_facilitator_raising_a_plain_exception_leaves_solana_out_of_the_challenge(
    shop: Shop, tmp_path: Path
) -> None:
    """Otherwise every paid call of the server would fail with an opaque error, EVM included."""
    payments = Payments(
        pay_to=shop.payee,
        network=shop.chain.network,
        settlement=shop.chain.settlement(),
        ledger=SQLiteLedger(tmp_path / "solana.sqlite"),
        also_accept=[Solana(SOLANA_PAYEE, settlement=NoFeePayer())],  # type: ignore[arg-type]
    )
    server = new_server(shop.framework, "solana-down", payments)

    @server.tool()
    @paid(price="0.05")
    def answer(question: str) -> str:
        return "answered"

    async with Client(connectable(server)) as client:
        challenge = challenge_of(await client.call_tool("answer", {"question": "q"}))
    await payments.ledger.close()
    assert [option.network for option in challenge.accepts] == [shop.chain.network]
    assert "hunter2" not in challenge.model_dump_json()

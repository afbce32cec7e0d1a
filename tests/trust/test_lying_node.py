"""A node that lies about settlements, and a payer's authorization submitted by someone else first.

Everything is real: anvil, our USDC on it, a paid MCP server with a SQLite or a
PostgreSQL ledger,
an MCP client, and a lying JSON-RPC node (a loopback HTTP server in front of
anvil that rewrites answers). Each test checks the ledger, both balances on
chain, and what the caller is told.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from mcp import Client
from mcp.server import MCPServer
from mcp.types import CallToolResult, TextContent

from x402_mcp import Payments, paid
from x402_mcp.client.payer import payment_meta, read_challenge, sign_payment
from x402_mcp.core.states import State
from x402_mcp.core.wire import PaymentPayload
from x402_mcp.gate.reconcile import Reconciler
from x402_mcp.ledger import Ledger
from x402_mcp.settlement.contracts.eip3009 import transfer_with_authorization_calldata
from x402_mcp.settlement.local import LocalSettlement
from x402_mcp.settlement.relayer import SEND_SYNC

from ..chains import AnvilChain
from ..ledger.conftest import Store
from ..settlement.lying_node import LyingNode

pytestmark = [pytest.mark.anyio, pytest.mark.anvil]

PRICE = 10_000  # $0.01
RECEIPTS = (SEND_SYNC, "eth_getTransactionReceipt")


@dataclass
class Shop:
    anvil: AnvilChain
    payments: Payments
    client: Client
    payer: LocalAccount
    runs: list[str] = field(default_factory=list)

    @property
    def ledger(self) -> Ledger:
        return self.payments.ledger

    def balances(self) -> tuple[int, int]:
        return self.anvil.balance_of(self.payer.address), self.anvil.balance_of(self.payments.pay_to)

    async def quote(self) -> tuple[str, PaymentPayload]:
        challenge = read_challenge(await self.client.call_tool("answer", {"question": "q"}))
        return str(challenge.accepts[0].extra["paymentRequestId"]), sign_payment(self.payer, challenge)

    async def call(self, payment: PaymentPayload) -> CallToolResult:
        return await self.client.call_tool("answer", {"question": "q"}, meta=payment_meta(payment))

    async def state(self, request_id: str) -> State:
        request = await self.ledger.get(request_id)
        assert request is not None
        return request.state

    async def reconcile_honestly(self) -> Reconciler:
        """A reconciliation pass over an honest node (its own gas account), every settling row stale."""
        gas = Account.create()
        self.anvil.fund_eth(gas.address, 10**18)
        honest = LocalSettlement.from_rpc(
            self.anvil.rpc_url, gas.key.to_0x_hex(), network=self.anvil.network_info
        )
        reconciler = Reconciler(
            self.ledger, honest, self.payments.asset, grace_seconds=-1, clock=self.payments.clock
        )
        await reconciler.run()
        return reconciler


@pytest.fixture
def node(anvil: AnvilChain) -> AsyncIterator[LyingNode]:
    with LyingNode(anvil.rpc_url) as lying:
        yield lying


@pytest.fixture
async def shop(anvil: AnvilChain, node: LyingNode, store: Store) -> AsyncIterator[Shop]:
    gas = Account.create()
    anvil.fund_eth(gas.address, 10**18)
    settlement = LocalSettlement.from_rpc(
        node.url, gas.key.to_0x_hex(), network=anvil.network_info, request_timeout=1.5, receipt_timeout=5
    )
    payments = Payments(
        pay_to=Account.create().address,
        network=anvil.network,
        asset=anvil.asset,
        settlement=settlement,
        ledger=store.ledger(),
    )
    server = MCPServer("lied-to", extensions=[payments])
    runs: list[str] = []

    @server.tool()
    @paid(price="0.01")
    def answer(question: str) -> str:
        runs.append(question)
        return f"answer to {question}"

    async with Client(server) as client:
        yield Shop(anvil, payments, client, anvil.new_account("1"), runs)


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def front_run(anvil: AnvilChain, payment: PaymentPayload) -> str:
    """Submit `payment`'s authorization from another account (anvil's second), as anyone may."""
    with anvil.lock:
        sent = anvil.w3.eth.send_transaction(
            {
                "from": anvil.w3.eth.accounts[1],
                "to": anvil.usdc,
                "data": HexStr("0x" + transfer_with_authorization_calldata(payment.payload).hex()),
                "gas": 200_000,
            }
        )
        receipt = anvil.w3.eth.wait_for_transaction_receipt(sent, poll_latency=0.01)
    assert receipt["status"] == 1
    return receipt["transactionHash"].to_0x_hex()


def _with_status(answer: dict[str, Any], status: str) -> dict[str, Any]:
    result = answer.get("result")
    if not isinstance(result, dict):
        return answer
    return {**answer, "result": {**result, "status": status}}


async def test_a_receipt_of_another_transaction_never_runs_the_tool(shop: Shop, node: LyingNode) -> None:
    first_id, first = await shop.quote()
    assert not (await shop.call(first)).is_error
    paid_before = await shop.ledger.get(first_id)
    assert paid_before is not None and paid_before.tx_hash
    real = node.ask("eth_getTransactionReceipt", [paid_before.tx_hash])
    # The real receipt of the same payer paying the same payee the same amount, for any send.
    node.forge = lambda method, _: {"result": real} if method in RECEIPTS else None
    start = shop.balances()

    request_id, payment = await shop.quote()
    result = await shop.call(payment)

    assert result.is_error
    assert shop.runs == ["q"], "the second call did not run"
    assert shop.balances() == start, "nothing was broadcast, nothing moved"
    assert await shop.state(request_id) is State.SETTLING
    assert "settlement backend failed" in text_of(result) and request_id in text_of(result)
    # An honest node later: the authorization is unused, so it is settled now, once.
    await shop.reconcile_honestly()
    assert await shop.state(request_id) is State.PAID
    assert shop.balances() == (start[0] - PRICE, start[1] + PRICE)


async def test_a_mined_transfer_reported_reverted_is_kept_never_released(shop: Shop, node: LyingNode) -> None:
    node.lie = lambda method, _, answer: _with_status(answer, "0x0") if method in RECEIPTS else None
    start = shop.balances()
    request_id, payment = await shop.quote()

    result = await shop.call(payment)

    assert result.is_error
    assert shop.runs == []
    assert shop.balances() == (start[0] - PRICE, start[1] + PRICE), "the transfer was really mined"
    assert await shop.state(request_id) is State.SETTLING, "never back to issued: money moved"
    assert "will be honoured" in text_of(result) and request_id in text_of(result)

    await shop.reconcile_honestly()
    assert await shop.state(request_id) is State.PAID
    retry = await shop.client.call_tool("answer", {"question": "q", "payment_request_id": request_id})
    assert not retry.is_error, text_of(retry)
    assert shop.runs == ["q"]
    assert shop.balances() == (start[0] - PRICE, start[1] + PRICE), "charged once"


async def test_a_send_answered_reverted_while_the_chain_shows_it_paid_is_honoured(
    shop: Shop, node: LyingNode
) -> None:
    node.lie = lambda method, _, answer: _with_status(answer, "0x0") if method == SEND_SYNC else None
    start = shop.balances()
    request_id, payment = await shop.quote()

    result = await shop.call(payment)

    assert not result.is_error, text_of(result)
    assert shop.runs == ["q"]
    assert shop.balances() == (start[0] - PRICE, start[1] + PRICE)
    assert await shop.state(request_id) is State.CONSUMED


async def test_an_authorization_someone_else_submitted_first_is_honoured(shop: Shop) -> None:
    start = shop.balances()
    request_id, payment = await shop.quote()
    theirs = front_run(shop.anvil, payment)
    signer = shop.payments.settlement.signer  # type: ignore[attr-defined]
    sent_before = shop.anvil.w3.eth.get_transaction_count(signer)

    result = await shop.call(payment)

    assert not result.is_error, text_of(result)
    assert shop.runs == ["q"]
    assert shop.balances() == (start[0] - PRICE, start[1] + PRICE), "charged once, by their transaction"
    request = await shop.ledger.get(request_id)
    assert request is not None and request.state is State.CONSUMED
    assert request.tx_hash == theirs
    assert shop.anvil.w3.eth.get_transaction_count(signer) == sent_before, "no transaction of ours to revert"


async def test_a_front_run_between_verify_and_send_is_honoured(shop: Shop, node: LyingNode) -> None:
    start = shop.balances()
    request_id, payment = await shop.quote()
    fronted: list[str] = []

    def before(method: str, _: list[Any]) -> None:
        if method == SEND_SYNC and not fronted:
            fronted.append(front_run(shop.anvil, payment))

    node.before = before
    result = await shop.call(payment)

    assert not result.is_error, text_of(result)
    assert shop.runs == ["q"]
    assert shop.balances() == (start[0] - PRICE, start[1] + PRICE)
    request = await shop.ledger.get(request_id)
    assert request is not None and request.state is State.CONSUMED and request.tx_hash == fronted[0]


async def test_a_trickled_send_answer_ends_at_the_deadline_and_the_receipt_is_polled(
    shop: Shop, node: LyingNode
) -> None:
    node.trickle = frozenset({SEND_SYNC})
    start = shop.balances()
    request_id, payment = await shop.quote()

    began = time.monotonic()
    result = await shop.call(payment)
    took = time.monotonic() - began

    assert not result.is_error, text_of(result)
    assert took < 5, f"a trickled answer held the call {took:.1f} s"
    assert shop.balances() == (start[0] - PRICE, start[1] + PRICE)
    assert await shop.state(request_id) is State.CONSUMED


async def test_a_trickling_node_fails_the_call_within_the_deadline_and_keeps_the_payment(
    shop: Shop, node: LyingNode
) -> None:
    node.trickle = frozenset({"eth_call"})
    node.trickle_delay = 0.2
    start = shop.balances()
    request_id, payment = await shop.quote()

    began = time.monotonic()
    result = await shop.call(payment)
    took = time.monotonic() - began

    assert result.is_error
    assert took < 8, f"a trickling node held the call {took:.1f} s"
    assert shop.runs == []
    assert shop.balances() == start
    assert await shop.state(request_id) is State.SETTLING, "the chain could not say nothing moved"
    await shop.reconcile_honestly()
    assert await shop.state(request_id) is State.PAID
    assert shop.balances() == (start[0] - PRICE, start[1] + PRICE)


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "until-close"])
async def test_a_huge_answer_is_refused_unread_and_keeps_the_payment(
    shop: Shop, node: LyingNode, declared: bool
) -> None:
    node.huge = frozenset({"eth_call"})
    node.declared = declared
    start = shop.balances()
    request_id, payment = await shop.quote()

    result = await shop.call(payment)

    assert result.is_error
    assert shop.runs == []
    assert shop.balances() == start
    assert node.huge_sent < 32 * 1024 * 1024, "the client stopped reading long before 96 MiB"
    assert await shop.state(request_id) is State.SETTLING

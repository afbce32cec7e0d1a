"""Our server takes batch-settlement payments from the official `x402` client over MCP, on the
embedded DevChain and on anvil: a deposit relayed before the first call's tool runs, then vouchers with no
chain transaction, the charge committed only when the tool succeeds, the corrective challenge
for a stale voucher, and one charge of two racing vouchers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from eth_account import Account
from mcp import Client
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult

from x402_mcp import Payments, paid
from x402_mcp.chains.devchain import TokenChain
from x402_mcp.client.payer import read_challenge
from x402_mcp.ledger.base import Ledger
from x402_mcp.ledger.sqlite import SQLiteLedger
from x402_mcp.schemes.batch import reasons

from ...ledger.conftest import POSTGRES_URL, fresh_schema
from .batch_payer import META_PAYMENT, META_RESPONSE, BatchPayer, challenge_json

pytestmark = pytest.mark.anyio

PRICE = 50_000  # $0.05


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Shop:
    chain: TokenChain
    payments: Payments
    server: MCPServer[Any]
    ledger: Any  # a Ledger that keeps channels (SQLite or PostgreSQL)
    payee: str
    runs: list[str] = field(default_factory=list)
    fail_next: list[bool] = field(default_factory=list)
    gate: anyio.Event | None = None
    running: anyio.Event = field(default_factory=anyio.Event)

    def payer(self) -> BatchPayer:
        return BatchPayer(self.chain.new_account(usdc="10"), self.chain)

    def block(self) -> int:
        with self.chain.lock:
            return int(self.chain.w3.eth.block_number)


@pytest.fixture
def ledger_kind() -> str:
    """The ledger the shop keeps its channels in (a test parametrizes it to run on PostgreSQL)."""
    return "sqlite"


@pytest.fixture
async def ledger(ledger_kind: str, tmp_path: Path) -> AsyncIterator[Ledger]:
    if ledger_kind == "sqlite":
        yield SQLiteLedger(tmp_path / "ledger.sqlite")
        return
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            pass
    except Exception as exc:
        reason = f"PostgreSQL is unreachable at $X402_POSTGRES_URL ({type(exc).__name__}: {exc})"
        if os.environ.get("X402_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    async with fresh_schema(POSTGRES_URL) as store:
        opened = store.ledger()
        yield opened
        await opened.close()


@pytest.fixture
def shop(chain: TokenChain, ledger: Ledger) -> Shop:
    """A paid server offering batch settlement, on each chain under test (DevChain, anvil)."""
    payee = Account.create().address
    payments = Payments(
        pay_to=payee,
        network=chain.network,
        settlement=chain.settlement(),
        ledger=ledger,
        public_url="http://pay.test",
        batch_settlement=True,
    )
    server = MCPServer("shop", extensions=[payments])
    shop = Shop(chain, payments, server, ledger, payee)

    @server.tool()
    @paid(price="0.05", description="one answer")
    async def answer(question: str) -> str:
        shop.runs.append(question)
        if shop.gate is not None:
            shop.running.set()
            await shop.gate.wait()
        if shop.fail_next and shop.fail_next.pop():
            raise ToolError("the answer engine is down")
        return f"answer to {question}"

    return shop


def receipt(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.meta is not None
    return dict(result.meta[META_RESPONSE])


async def test_the_challenge_offers_batch_settlement_beside_exact(shop: Shop) -> None:
    async with Client(shop.server) as client:
        challenge = read_challenge(await client.call_tool("answer", {"question": "q"}))
    schemes = [entry.scheme for entry in challenge.accepts]
    assert schemes == ["exact", "batch-settlement"]
    batch = challenge.accepts[1]
    assert batch.amount == str(PRICE) and batch.pay_to == shop.payee
    extra = batch.extra
    assert extra["withdrawDelay"] == 900 and extra["minDeposit"] == str(10 * PRICE)
    assert extra["receiverAuthorizer"].startswith("0x") and int(extra["receiverAuthorizer"], 16) != 0
    assert extra["paymentRequestId"] == challenge.accepts[0].extra["paymentRequestId"]


async def test_a_deposit_then_vouchers_with_no_chain_transaction(shop: Shop) -> None:
    payer = shop.payer()
    before = shop.chain.balance_of(payer.account.address)
    async with Client(shop.server) as client:
        first, payment = await payer.pay(client, "answer", {"question": "one"})
        opened = receipt(first)
        deposited = int(payment["payload"]["deposit"]["amount"])
        assert payment["payload"]["type"] == "deposit" and deposited >= PRICE
        assert opened["transaction"].startswith("0x") and opened["amount"] == str(deposited)
        assert opened["extra"]["chargedAmount"] == str(PRICE)
        # The deposit is in escrow: the payer's money left, the payee has nothing yet.
        assert shop.chain.balance_of(payer.account.address) == before - deposited
        assert shop.chain.balance_of(shop.payee) == 0
        block = shop.block()
        for n in range(2, 5):
            result, voucher = await payer.pay(client, "answer", {"question": str(n)})
            assert voucher["payload"]["type"] == "voucher"
            answer = receipt(result)
            assert answer["transaction"] == "" and answer["extra"]["chargedAmount"] == str(PRICE)
            state = answer["extra"]["channelState"]
            assert state["chargedCumulativeAmount"] == str(n * PRICE) and state["balance"] == str(deposited)
            # The voucher that paid is in the ledger by the time its output arrives.
            stored = await shop.ledger.channel(voucher["payload"]["voucher"]["channelId"])
            assert stored is not None and stored.signature == voucher["payload"]["voucher"]["signature"]
        assert shop.block() == block  # vouchers sent nothing to the chain
    assert shop.runs == ["one", "2", "3", "4"]
    channel = payment["payload"]["voucher"]["channelId"]
    charges = await shop.ledger.charges(channel)
    assert [c.amount for c in charges] == [PRICE] * 4
    record = await shop.ledger.channel(channel)
    assert record is not None and record.charged == 4 * PRICE and record.signed_max_claimable == 4 * PRICE


async def test_a_failed_tool_charges_nothing(shop: Shop) -> None:
    payer = shop.payer()
    async with Client(shop.server) as client:
        _, payment = await payer.pay(client, "answer", {"question": "one"})
        shop.fail_next.append(True)
        failed, _ = await payer.pay(client, "answer", {"question": "two"})
        assert failed.is_error and META_RESPONSE not in (failed.meta or {})
        # The client heard no receipt: its next voucher is at the same base, and it is taken.
        third, _ = await payer.pay(client, "answer", {"question": "three"})
        assert receipt(third)["extra"]["channelState"]["chargedCumulativeAmount"] == str(2 * PRICE)
    assert shop.runs == ["one", "two", "three"]
    charges = await shop.ledger.charges(payment["payload"]["voucher"]["channelId"])
    assert [c.amount for c in charges] == [PRICE, PRICE]


async def test_a_stale_voucher_gets_the_corrective_challenge_and_the_client_recovers(shop: Shop) -> None:
    payer = shop.payer()
    async with Client(shop.server) as client:
        await payer.pay(client, "answer", {"question": "one"})
        challenge = await client.call_tool("answer", {"question": "two"})
        payment, requirements = payer.sign(challenge)
        paid_once = await client.call_tool("answer", {"question": "two"}, meta={META_PAYMENT: payment})
        receipt(paid_once)  # the client never hears this receipt: it falls behind
        # Its next voucher is signed at the old base: refused with our channel's state.
        challenge = await client.call_tool("answer", {"question": "three"})
        stale, stale_requirements = payer.sign(challenge)
        refused = await client.call_tool("answer", {"question": "three"}, meta={META_PAYMENT: stale})
        required = challenge_json(refused)
        assert required["error"] == reasons.CUMULATIVE_AMOUNT_MISMATCH
        corrected = next(a for a in required["accepts"] if a["scheme"] == "batch-settlement")
        assert corrected["extra"]["channelState"]["chargedCumulativeAmount"] == str(2 * PRICE)
        assert corrected["extra"]["voucherState"]["signedMaxClaimable"] == str(2 * PRICE)
        assert payer.heard(stale, stale_requirements, refused)  # the official client resyncs
        # It pays the same request again, now at the right base.
        again, _ = payer.sign(refused)
        result = await client.call_tool("answer", {"question": "three"}, meta={META_PAYMENT: again})
        assert receipt(result)["extra"]["channelState"]["chargedCumulativeAmount"] == str(3 * PRICE)
    assert shop.runs == ["one", "two", "three"]
    del requirements


@pytest.mark.parametrize("ledger_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_racing_vouchers_on_one_channel_charge_once(shop: Shop) -> None:
    payer = shop.payer()
    async with Client(shop.server) as client:
        _, opened = await payer.pay(client, "answer", {"question": "open"})
        payments = []
        for n in range(2):
            challenge = await client.call_tool("answer", {"question": f"race {n}"})
            payments.append(payer.sign(challenge)[0])  # both signed at the same base
        shop.gate = anyio.Event()
        results: list[CallToolResult] = []

        async def send(payment: dict[str, Any], n: int) -> None:
            results.append(
                await client.call_tool("answer", {"question": f"race {n}"}, meta={META_PAYMENT: payment})
            )

        async with anyio.create_task_group() as group:
            for n, payment in enumerate(payments):
                group.start_soon(send, payment, n)
            await shop.running.wait()
            await anyio.sleep(0.2)  # the other voucher meets the held channel meanwhile
            shop.gate.set()
    paid_results = [r for r in results if not r.is_error]
    refused = [r for r in results if r.is_error]
    assert len(paid_results) == 1 and len(refused) == 1
    # Held by the first for its run: the second is told to retry (its request is still payable).
    assert "Another call holds this channel" in challenge_json(refused[0])["error"]
    assert len(shop.runs) == 2  # the tool ran for the one voucher charged, never for the other
    charges = await shop.ledger.charges(opened["payload"]["voucher"]["channelId"])
    assert [c.amount for c in charges] == [PRICE, PRICE]


async def test_a_refund_returns_the_unspent_balance_on_chain_without_running_the_tool(shop: Shop) -> None:
    payer = shop.payer()
    start = shop.chain.balance_of(payer.account.address)
    async with Client(shop.server) as client:
        _, opened = await payer.pay(client, "answer", {"question": "one"})
        await payer.pay(client, "answer", {"question": "two"})
        deposited = int(opened["payload"]["deposit"]["amount"])
        challenge = await client.call_tool("answer", {"question": "refund"})
        refund, requirements = payer.refund(challenge)
        answered = await client.call_tool("answer", {"question": "refund"}, meta={META_PAYMENT: refund})
        assert answered.is_error and "Refund acknowledged" in str(answered.content)  # no tool output
        settled = dict((answered.meta or {})[META_RESPONSE])
        payer.heard(refund, requirements, answered)
    assert shop.runs == ["one", "two"]  # the refund ran no tool
    assert settled["transaction"].startswith("0x") and settled["amount"] == str(deposited - 2 * PRICE)
    # Everything but the two charges is back with the payer; the charges stay in escrow to claim.
    assert shop.chain.balance_of(payer.account.address) == start - 2 * PRICE
    channel = opened["payload"]["voucher"]["channelId"]
    record = await shop.ledger.channel(channel)
    assert record is not None and record.chain.balance == 2 * PRICE and record.charged == 2 * PRICE
    assert record.chain.refund_nonce == 1 and not record.busy(
        shop.chain.w3.eth.get_block("latest")["timestamp"]
    )
    assert payer.storage.get(channel) is None  # the official client forgot the refunded channel


async def test_a_server_that_lost_its_channels_resyncs_the_client_from_the_chain(
    shop: Shop, tmp_path: Path
) -> None:
    payer = shop.payer()
    async with Client(shop.server) as client:
        _, opened = await payer.pay(client, "answer", {"question": "one"})
    # The same payee, its ledger lost: the channel exists only on chain (nothing claimed yet).
    fresh = SQLiteLedger(tmp_path / "fresh.sqlite")
    payments = Payments(
        pay_to=shop.payee,
        network=shop.chain.network,
        settlement=shop.chain.settlement(),
        ledger=fresh,
        public_url="http://pay.test",
        batch_settlement=True,
    )
    server = MCPServer("again", extensions=[payments])

    @server.tool()
    @paid(price="0.05")
    async def answer(question: str) -> str:
        return f"again: {question}"

    async with Client(server) as client:
        challenge = await client.call_tool("answer", {"question": "two"})
        stale, requirements = payer.sign(challenge)
        refused = await client.call_tool("answer", {"question": "two"}, meta={META_PAYMENT: stale})
        required = challenge_json(refused)
        assert required["error"] == reasons.CUMULATIVE_AMOUNT_MISMATCH
        corrected = next(a for a in required["accepts"] if a["scheme"] == "batch-settlement")
        assert corrected["extra"]["channelState"]["chargedCumulativeAmount"] == "0"
        assert payer.heard(stale, requirements, refused)  # resynced from the chain
        again, _ = payer.sign(refused)
        result = await client.call_tool("answer", {"question": "two"}, meta={META_PAYMENT: again})
        assert receipt(result)["extra"]["channelState"]["chargedCumulativeAmount"] == str(PRICE)
    channel = opened["payload"]["voucher"]["channelId"]
    assert [c.amount for c in await fresh.charges(channel)] == [PRICE]

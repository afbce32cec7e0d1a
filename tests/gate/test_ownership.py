"""Two servers sharing one ledger: neither settles, redeems, expires or reconciles the other's
requests, on any path, and a foreign request looks exactly like an unknown id.

"Mine" quotes `answer` at $0.05; "theirs" has a tool of the same name at the same price but
differs in one part of its identity (payee, network or asset), on SQLite and on PostgreSQL,
on both frameworks. What theirs tries must leave my request as it was (bar nothing: its
refusal's audit line names no request) and still mine to redeem.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx2
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from mcp import Client
from mcp.types import CallToolResult

from tests.gate.conftest import AnyServer, connectable, new_server, text_of
from tests.ledger.conftest import fresh_schema, postgres_url, sqlite_store
from x402_mcp import Payments, paid
from x402_mcp.chains.devchain import DevChain
from x402_mcp.client.payer import read_challenge, sign_payment
from x402_mcp.core.challenge import META_PAYMENT, REQUEST_ID_ARGUMENT
from x402_mcp.core.ids import new_request_id
from x402_mcp.core.networks import Asset
from x402_mcp.core.states import State
from x402_mcp.core.wire import PaymentPayload, PaymentRequired, encode_header
from x402_mcp.errors import Refused, UnknownPaymentRequest
from x402_mcp.ledger import Ledger
from x402_mcp.ledger.base import PaymentRequest
from x402_mcp.page.serving import build_page
from x402_mcp.schemes.exact.evm import requirements_for

pytestmark = pytest.mark.anyio

__all__ = ["postgres_url"]  # a fixture, used by `shared_ledgers`

OTHER_ASSET = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"


@dataclass
class Pair:
    chain: DevChain
    mine: Payments
    theirs: Payments
    mine_server: AnyServer
    theirs_server: AnyServer
    payer: LocalAccount
    runs: dict[str, int]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def shared_ledgers(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Ledger, Ledger]]:
    """Two ledger objects (two connections) on one store, as two processes would hold them."""
    if request.param == "sqlite":
        store = sqlite_store(tmp_path / "shared.sqlite")
        yield store.ledger(), store.ledger()
        return
    async with fresh_schema(request.getfixturevalue("postgres_url")) as postgres:
        first, second = postgres.ledger(), postgres.ledger()
        yield first, second
        await first.close()
        await second.close()


@pytest.fixture(params=["another payee", "another network", "another asset"])
def difference(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def answering(who: str, runs: dict[str, int]) -> Any:
    """`answer` as the server `who` has it, counting its runs."""

    async def answer(question: str) -> str:
        runs[who] = runs.get(who, 0) + 1
        return f"{who}: {question}"

    return answer


@pytest.fixture
async def pair(
    gate_chain: DevChain, shared_ledgers: tuple[Ledger, Ledger], framework: str, difference: str
) -> AsyncIterator[Pair]:
    snapshot = gate_chain.snapshot()
    payee = Account.create().address
    network: Any = gate_chain.network
    asset: Asset | None = None
    their_payee = payee
    if difference == "another payee":
        their_payee = Account.create().address
    elif difference == "another network":
        network = replace(gate_chain.network_info, caip2="eip155:31999", chain_id=31999)
    else:
        asset = Asset(OTHER_ASSET, "USDC", "2")
    common: dict[str, Any] = {"settlement": gate_chain.settlement(), "public_url": "http://pay.test"}
    mine = Payments(pay_to=payee, network=gate_chain.network, ledger=shared_ledgers[0], **common)
    theirs = Payments(pay_to=their_payee, network=network, asset=asset, ledger=shared_ledgers[1], **common)
    runs: dict[str, int] = {}
    servers = []
    for name, payments in (("mine", mine), ("theirs", theirs)):
        server = new_server(framework, name, payments)
        server.tool()(paid(price="0.05")(answering(name, runs)))
        servers.append(server)
        await payments.open()
    yield Pair(gate_chain, mine, theirs, servers[0], servers[1], gate_chain.new_account(usdc="10"), runs)
    gate_chain.revert(snapshot)


async def quote(pair: Pair) -> PaymentRequest:
    """A request of mine for `answer`, as the gate issues it."""
    async with Client(connectable(pair.mine_server), mode="legacy") as client:
        challenge = await client.call_tool("answer", {"question": "q"})
    request_id = read_challenge(challenge).accepts[0].extra["paymentRequestId"]
    request = await pair.mine.ledger.get(request_id)
    assert request is not None
    return request


def signed(pair: Pair, request: PaymentRequest) -> PaymentPayload:
    requirements = requirements_for(request, pair.mine.asset)
    return sign_payment(pair.payer, PaymentRequired(accepts=[requirements]))


async def paid_request(pair: Pair) -> PaymentRequest:
    request = await quote(pair)
    requirements = requirements_for(request, pair.mine.asset)
    return await pair.mine.collector.collect(request, signed(pair, request), requirements, decimals=6)


async def kept(pair: Pair, request_id: str) -> tuple[Any, ...]:
    """Everything the shared ledger keeps of one request."""
    ledger = pair.mine.ledger
    return (
        await ledger.get(request_id),
        await ledger.settlements(request_id),
        await ledger.audit_trail(request_id),
    )


async def call_theirs(
    pair: Pair, arguments: dict[str, Any], meta: dict[str, Any] | None = None
) -> CallToolResult:
    async with Client(connectable(pair.theirs_server), mode="legacy") as client:
        return await client.call_tool("answer", {"question": "q", **arguments}, meta=meta)


def without_ids(text: str) -> str:
    return re.sub(r"pr_[A-Za-z0-9_-]+", "pr_…", text)


async def redeem_mine(pair: Pair, request_id: str) -> CallToolResult:
    async with Client(connectable(pair.mine_server), mode="legacy") as client:
        return await client.call_tool("answer", {"question": "q", REQUEST_ID_ARGUMENT: request_id})


async def test_their_tool_does_not_run_on_my_paid_request_id(pair: Pair) -> None:
    request = await paid_request(pair)
    before = await kept(pair, request.id)

    foreign = await call_theirs(pair, {REQUEST_ID_ARGUMENT: request.id})
    unknown = await call_theirs(pair, {REQUEST_ID_ARGUMENT: new_request_id()})

    assert foreign.is_error and without_ids(text_of(foreign)) == without_ids(text_of(unknown))
    assert "there is no payment request" in text_of(foreign)
    assert pair.runs == {} and await kept(pair, request.id) == before
    mine = await redeem_mine(pair, request.id)
    assert not mine.is_error and text_of(mine) == "mine: q" and pair.runs == {"mine": 1}


async def test_a_payment_for_my_request_is_not_taken_by_their_server(pair: Pair) -> None:
    request = await quote(pair)
    payload = signed(pair, request)
    before, balance = await kept(pair, request.id), pair.chain.balance_of(pair.payer.address)
    meta = {META_PAYMENT: payload.model_dump(by_alias=True, exclude_none=True)}

    foreign = await call_theirs(pair, {}, meta)
    unknown_payload = payload.model_copy(
        update={
            "accepted": payload.accepted.model_copy(update={"extra": {"paymentRequestId": new_request_id()}})
        }
    )
    unknown = await call_theirs(
        pair, {}, {META_PAYMENT: unknown_payload.model_dump(by_alias=True, exclude_none=True)}
    )

    assert foreign.is_error and without_ids(text_of(foreign)) == without_ids(text_of(unknown))
    assert pair.runs == {} and pair.chain.balance_of(pair.payer.address) == balance
    assert await kept(pair, request.id) == before
    # The same signed payment still pays my request, on my server.
    async with Client(connectable(pair.mine_server), mode="legacy") as client:
        mine = await client.call_tool("answer", {"question": "q"}, meta=meta)
    assert not mine.is_error and pair.runs == {"mine": 1}


async def test_their_collector_refuses_my_request_as_unknown(pair: Pair) -> None:
    request = await quote(pair)
    before = await kept(pair, request.id)
    requirements = requirements_for(request, pair.mine.asset)

    with pytest.raises(Refused) as refused:
        await pair.theirs.collector.collect(request, signed(pair, request), requirements, decimals=6)

    assert isinstance(refused.value.error, UnknownPaymentRequest) and refused.value.request is None
    assert await pair.theirs.collector.get(request.id) is None
    assert await kept(pair, request.id) == before


async def test_a_callers_plain_retry_on_their_server_does_not_spend_my_request(pair: Pair) -> None:
    now = time.time()
    request = PaymentRequest(
        id=new_request_id(),
        tool="answer",
        price=50_000,
        asset=pair.mine.asset.address,
        network=pair.mine.network.caip2,
        pay_to=pair.mine.pay_to,
        caller="principal:alice",
        created_at=now,
        expires_at=now + 600,
        max_timeout_seconds=600,
    )
    await pair.mine.open()
    await pair.mine.ledger.issue(request)
    requirements = requirements_for(request, pair.mine.asset)
    await pair.mine.collector.collect(request, signed(pair, request), requirements, decimals=6)
    before = await kept(pair, request.id)

    theirs = await pair.theirs.redemption.take_redeemable(tool="answer", caller="principal:alice", price=1)

    assert theirs is None and await kept(pair, request.id) == before
    mine = await pair.mine.redemption.take_redeemable(tool="answer", caller="principal:alice", price=50_000)
    assert mine is not None and mine.request.id == request.id


async def test_their_page_knows_nothing_of_my_request(pair: Pair) -> None:
    request = await quote(pair)
    payload = encode_header(signed(pair, request))
    before = await kept(pair, request.id)
    unknown = new_request_id()
    transport = httpx2.ASGITransport(app=build_page(pair.theirs).app())
    async with httpx2.AsyncClient(transport=transport, base_url="http://pay.test") as web:

        async def answers(request_id: str) -> list[tuple[int, str]]:
            replies = [
                await web.get(f"/pay/{request_id}", headers={"Accept": "text/html"}),
                await web.get(f"/pay/{request_id}", headers={"Accept": "application/json"}),
                await web.get(f"/pay/{request_id}", headers={"PAYMENT-SIGNATURE": payload}),
                await web.post(f"/pay/{request_id}", json={"payload": {}}),
            ]
            return [(reply.status_code, without_ids(reply.text)) for reply in replies]

        foreign, unknowns = await answers(request.id), await answers(unknown)

    assert foreign == unknowns
    assert all(status == 404 for status, _ in foreign)
    assert await kept(pair, request.id) == before


async def test_their_reconciler_and_sweeper_leave_my_requests(pair: Pair) -> None:
    settling = await quote(pair)
    requirements = requirements_for(settling, pair.mine.asset)
    payload = signed(pair, settling)
    await pair.mine.collector.begin(settling, payload, requirements, price=settling.price, decimals=6)
    overdue = await quote(pair)
    before = [await kept(pair, settling.id), await kept(pair, overdue.id)]
    pair.theirs.reconciler.grace_seconds = pair.mine.reconciler.grace_seconds = -1

    outcome = await pair.theirs.reconciler.run()
    sweep = await pair.theirs.sweeper.sweep(now=time.time() + 10_000)

    assert (outcome.settled, outcome.released, outcome.pending) == ([], [], [])
    assert sweep.expired == 0
    assert [await kept(pair, settling.id), await kept(pair, overdue.id)] == before
    # Mine to reconcile and to sweep.
    assert (await pair.mine.reconciler.run()).settled == [settling.id]
    assert (await pair.mine.sweeper.sweep(now=time.time() + 10_000)).expired == 1
    found = await pair.mine.ledger.get(overdue.id)
    assert found is not None and found.state is State.EXPIRED


async def test_same_payee_but_another_tool_or_a_dearer_price_redeems_nothing(
    gate_chain: DevChain, shared_ledgers: tuple[Ledger, Ledger], framework: str
) -> None:
    snapshot = gate_chain.snapshot()
    try:
        payee = Account.create().address
        common: dict[str, Any] = {
            "pay_to": payee,
            "network": gate_chain.network,
            "settlement": gate_chain.settlement(),
            "public_url": "http://pay.test",
        }
        runs: dict[str, int] = {}
        mine = Payments(ledger=shared_ledgers[0], **common)
        theirs = Payments(ledger=shared_ledgers[1], **common)
        mine_server, theirs_server = (
            new_server(framework, "mine", mine),
            new_server(framework, "theirs", theirs),
        )
        mine_server.tool()(paid(price="0.05")(answering("mine", runs)))
        dearer = answering("theirs", runs)
        theirs_server.tool()(paid(price="0.10")(dearer))
        ask = answering("theirs-ask", runs)
        ask.__name__ = "ask"
        theirs_server.tool()(paid(price="0.05")(ask))
        pair = Pair(
            gate_chain, mine, theirs, mine_server, theirs_server, gate_chain.new_account(usdc="10"), runs
        )
        await mine.open()
        await theirs.open()
        request = await paid_request(pair)
        before = await kept(pair, request.id)

        async with Client(connectable(theirs_server), mode="legacy") as client:
            by_price = await client.call_tool("answer", {"question": "q", REQUEST_ID_ARGUMENT: request.id})
            by_tool = await client.call_tool("ask", {"question": "q", REQUEST_ID_ARGUMENT: request.id})

        assert by_price.is_error and "covers $0.05, but this call costs $0.10" in text_of(by_price)
        assert by_tool.is_error and "is for tool 'answer', not 'ask'" in text_of(by_tool)
        assert runs == {} and await kept(pair, request.id) == before
        assert not (await redeem_mine(pair, request.id)).is_error and runs == {"mine": 1}
    finally:
        gate_chain.revert(snapshot)

"""Exactly once through the gate on PostgreSQL too: the same payment sent many times at once,
a v1 authorization (which names no request) sent many times at once, and a paid request
redeemed by its id many times at once each run the tool once and move the money once.

(tests/gate/test_exactly_once.py proves the same on SQLite; PostgreSQL's row locks and
isolation differ, so the claims are attacked there separately.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver.exceptions import ToolError

from tests.gate.conftest import PRICE, Shop, challenge_of, connectable, new_server, text_of
from tests.gate.test_exactly_once import at_once, successes
from tests.ledger.conftest import fresh_schema, postgres_url  # noqa: F401  (a fixture)
from x402_mcp import Payments, paid
from x402_mcp.core.challenge import META_PAYMENT
from x402_mcp.core.evm import sign_authorization
from x402_mcp.core.states import State
from x402_mcp.core.wire import PaymentPayloadV1

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@dataclass
class PgShop:
    shop: Shop
    payments: Payments
    client: Client
    runs: dict[str, int]
    fail_next: list[bool]


@pytest.fixture
async def pg_shop(shop: Shop, postgres_url: str) -> AsyncIterator[PgShop]:  # noqa: F811
    async with fresh_schema(postgres_url) as store:
        payments = Payments(
            pay_to=shop.payee,
            network=shop.chain.network_info,
            settlement=shop.chain.settlement(),
            ledger=store.ledger(),
        )
        fail_next: list[bool] = []
        server = new_server(shop.framework, "pg-exactly-once", payments)
        runs: dict[str, int] = {}

        async def run(name: str) -> str:
            runs[name] = runs.get(name, 0) + 1
            await anyio.sleep(0.3)  # so that the concurrent calls overlap the run
            if fail_next and fail_next.pop():
                raise ToolError(f"{name} is down")
            return f"{name} ran"

        @server.tool()
        @paid(price="0.05", settle="after")
        async def spec_order(topic: str) -> str:
            return await run("spec_order")

        @server.tool()
        @paid(price="0.05")
        async def settle_first(topic: str) -> str:
            return await run("settle_first")

        try:
            async with Client(connectable(server)) as client:
                yield PgShop(shop, payments, client, runs, fail_next)
        finally:
            await payments.ledger.close()


@pytest.mark.parametrize("tool", ["spec_order", "settle_first"])
async def test_one_payment_sent_24_times_at_once_runs_once_on_postgresql(pg_shop: PgShop, tool: str) -> None:
    shop, client = pg_shop.shop, pg_shop.client
    payment = shop.pay(await client.call_tool(tool, {"topic": "t"}))
    meta: dict[str, Any] = {META_PAYMENT: payment.dump()}
    payer_before, payee_before = shop.balances()

    results = await at_once(24, lambda: client.call_tool(tool, {"topic": "t"}, meta=meta))

    assert pg_shop.runs == {tool: 1}
    [won] = successes(results)
    assert text_of(won) == f"{tool} ran"
    assert shop.balances() == (payer_before - PRICE, payee_before + PRICE)
    assert len(await pg_shop.payments.ledger.settlements()) == 1


@pytest.mark.parametrize("tool", ["spec_order", "settle_first"])
async def test_one_v1_authorization_sent_12_times_at_once_runs_once_on_postgresql(
    pg_shop: PgShop, tool: str
) -> None:
    shop, client = pg_shop.shop, pg_shop.client
    requirements = challenge_of(await client.call_tool(tool, {"topic": "t"})).accepts[0]
    signed = sign_authorization(shop.payer, requirements)
    v1 = PaymentPayloadV1(scheme="exact", network=requirements.network, payload=signed)
    meta: dict[str, Any] = {META_PAYMENT: v1.dump()}
    payer_before, payee_before = shop.balances()

    results = await at_once(12, lambda: client.call_tool(tool, {"topic": "t"}, meta=meta))

    assert pg_shop.runs == {tool: 1}
    assert len(successes(results)) == 1
    assert shop.balances() == (payer_before - PRICE, payee_before + PRICE)
    assert len(await pg_shop.payments.ledger.requests(states=[State.CONSUMED])) == 1
    assert len(await pg_shop.payments.ledger.settlements()) == 1


async def test_a_consumed_request_redeemed_by_id_24_times_at_once_never_runs_again_on_postgresql(
    pg_shop: PgShop,
) -> None:
    shop, client = pg_shop.shop, pg_shop.client
    first = await client.call_tool("settle_first", {"topic": "t"})
    request_id = challenge_of(first).accepts[0].extra["paymentRequestId"]
    meta: dict[str, Any] = {META_PAYMENT: shop.pay(first).dump()}
    # The payment settles and runs once; its request is then consumed.
    paid_result = await client.call_tool("settle_first", {"topic": "t"}, meta=dict(meta))
    assert not paid_result.is_error, text_of(paid_result)
    payer_before, payee_before = shop.balances()

    results = await at_once(
        24, lambda: client.call_tool("settle_first", {"topic": "t", "payment_request_id": request_id})
    )

    assert pg_shop.runs == {"settle_first": 1}, "a consumed request ran the tool again"
    assert successes(results) == []
    assert shop.balances() == (payer_before, payee_before)


@pytest.mark.parametrize("tool", ["spec_order", "settle_first"])
async def test_after_a_failed_run_24_retries_at_once_run_once_more_and_charge_once_on_postgresql(
    pg_shop: PgShop, tool: str
) -> None:
    """A paid run that failed leaves its request paid, to be tried again with the same payment
    or its id: a burst of such retries (both ways at once) gets one more run, not 24."""
    shop, client = pg_shop.shop, pg_shop.client
    first = await client.call_tool(tool, {"topic": "t"})
    request_id = challenge_of(first).accepts[0].extra["paymentRequestId"]
    meta: dict[str, Any] = {META_PAYMENT: shop.pay(first).dump()}
    payer_before, payee_before = shop.balances()
    pg_shop.fail_next.append(True)
    failed = await client.call_tool(tool, {"topic": "t"}, meta=dict(meta))
    assert failed.is_error and "is down" in text_of(failed), text_of(failed)

    by_payment = at_once(12, lambda: client.call_tool(tool, {"topic": "t"}, meta=dict(meta)))
    results: list[Any] = []

    async def by_id() -> None:
        arguments = {"topic": "t", "payment_request_id": request_id}
        results.extend(await at_once(12, lambda: client.call_tool(tool, arguments)))

    async with anyio.create_task_group() as group:
        group.start_soon(by_id)
        results.extend(await by_payment)

    assert pg_shop.runs == {tool: 2}, "the failed run and exactly one retry"
    assert len(successes(results)) == 1
    assert shop.balances() == (payer_before - PRICE, payee_before + PRICE)
    assert len(await pg_shop.payments.ledger.settlements()) == 1

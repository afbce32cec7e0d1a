"""`@paid(settle="after")`: the x402 spec's order (verify, run, settle on success)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client
from mcp.server.mcpserver.exceptions import ToolError

from tests.chains import settlement_with_clock
from tests.facilitator.serving import Interposer, serving
from tests.gate.conftest import PRICE, Shop, challenge_of, connectable, drain_payer, new_server, text_of
from x402_mcp import Payments, paid
from x402_mcp.client.payer import payment_meta, sign_payment
from x402_mcp.core.challenge import META_PAYMENT, META_PAYMENT_RESPONSE
from x402_mcp.core.states import State
from x402_mcp.core.wire import PaymentPayload, PaymentRequirements
from x402_mcp.facilitator import facilitator_app
from x402_mcp.gate.reconcile import Reconciler
from x402_mcp.ledger.sqlite import SQLiteLedger
from x402_mcp.settlement import FacilitatorSettlement

pytestmark = pytest.mark.anyio


class Behaviour:
    fail = False
    front_run: tuple[PaymentPayload, PaymentRequirements] | None = None
    drain = False
    runs = 0


@pytest.fixture
async def spec_client(shop: Shop) -> AsyncIterator[tuple[Client, Behaviour]]:
    behaviour = Behaviour()
    payments = Payments(
        pay_to=shop.payee, network=shop.chain.network, settlement=shop.chain.settlement(), ledger=shop.ledger
    )
    server = new_server(shop.framework, "spec", payments)

    @server.tool()
    @paid(price="0.05", settle="after")
    async def premium(topic: str) -> str:
        behaviour.runs += 1
        if behaviour.front_run is not None:
            # Someone submits the same authorization first, so our own transaction reverts.
            receipt = await settlement_with_clock(shop.chain, time.time).settle(*behaviour.front_run)
            assert receipt.success
        if behaviour.fail:
            raise ToolError("premium is broken today")
        if behaviour.drain:
            drain_payer(shop)
        return f"secret insight on {topic}"

    async with Client(connectable(server)) as client:
        yield client, behaviour


async def test_success_settles_after_the_run(spec_client: tuple[Client, Behaviour], shop: Shop) -> None:
    client, _ = spec_client
    required = challenge_of(await client.call_tool("premium", {"topic": "x"}))
    before = shop.balances()

    result = await client.call_tool(
        "premium", {"topic": "x"}, meta={META_PAYMENT: sign_payment(shop.payer, required).dump()}
    )

    assert not result.is_error, text_of(result)
    assert text_of(result) == "secret insight on x"
    assert (result.meta or {})[META_PAYMENT_RESPONSE]["success"] is True
    assert shop.balances() == (before[0] - PRICE, before[1] + PRICE)
    request = await shop.ledger.get(required.accepts[0].extra["paymentRequestId"])
    assert request is not None and request.state is State.CONSUMED


async def test_a_failing_tool_is_not_charged(spec_client: tuple[Client, Behaviour], shop: Shop) -> None:
    client, behaviour = spec_client
    required = challenge_of(await client.call_tool("premium", {"topic": "x"}))
    behaviour.fail = True
    before = shop.balances()

    result = await client.call_tool(
        "premium", {"topic": "x"}, meta={META_PAYMENT: sign_payment(shop.payer, required).dump()}
    )

    assert result.is_error and "premium is broken today" in text_of(result)
    assert shop.balances() == before
    request = await shop.ledger.get(required.accepts[0].extra["paymentRequestId"])
    assert request is not None and request.state is State.ISSUED


async def test_an_authorization_someone_else_settled_first_is_honoured_as_the_payment(
    spec_client: tuple[Client, Behaviour], shop: Shop
) -> None:
    client, behaviour = spec_client
    required = challenge_of(await client.call_tool("premium", {"topic": "x"}))
    payment = sign_payment(shop.payer, required)
    behaviour.front_run = (payment, required.accepts[0])
    before = shop.balances()

    result = await client.call_tool("premium", {"topic": "x"}, meta={META_PAYMENT: payment.dump()})

    # Our transaction reverted, but the payer's money reached the payee: that is the payment.
    assert behaviour.runs == 1
    assert not result.is_error, text_of(result)
    assert text_of(result) == "secret insight on x"
    assert shop.balances() == (before[0] - PRICE, before[1] + PRICE)
    request = await shop.ledger.get(required.accepts[0].extra["paymentRequestId"])
    assert request is not None and request.state is State.CONSUMED and request.tx_hash


async def test_a_failing_tool_whose_authorization_someone_else_settled_keeps_the_payment(
    spec_client: tuple[Client, Behaviour], shop: Shop
) -> None:
    client, behaviour = spec_client
    required = challenge_of(await client.call_tool("premium", {"topic": "x"}))
    request_id = required.accepts[0].extra["paymentRequestId"]
    payment = sign_payment(shop.payer, required)
    behaviour.front_run = (payment, required.accepts[0])
    behaviour.fail = True
    before = shop.balances()

    result = await client.call_tool("premium", {"topic": "x"}, meta={META_PAYMENT: payment.dump()})

    assert result.is_error and "premium is broken today" in text_of(result)
    assert shop.balances() == (before[0] - PRICE, before[1] + PRICE), "their transaction moved the money"
    request = await shop.ledger.get(request_id)
    assert request is not None and request.state is State.SETTLING, "never payable again: money moved"
    reconciler = Reconciler(
        shop.ledger, shop.chain.settlement(), shop.payments.asset, grace_seconds=-1, clock=lambda: 2**40
    )
    assert (await reconciler.run()).settled == [request_id]
    behaviour.front_run, behaviour.fail = None, False
    retry = await client.call_tool("premium", {"topic": "x", "payment_request_id": request_id})
    assert not retry.is_error, text_of(retry)
    assert shop.balances() == (before[0] - PRICE, before[1] + PRICE), "charged once"


async def test_failed_settlement_withholds_the_output(
    spec_client: tuple[Client, Behaviour], shop: Shop
) -> None:
    client, behaviour = spec_client
    required = challenge_of(await client.call_tool("premium", {"topic": "x"}))
    payment = sign_payment(shop.payer, required)
    behaviour.drain = True

    result = await client.call_tool("premium", {"topic": "x"}, meta={META_PAYMENT: payment.dump()})

    assert behaviour.runs == 1
    assert result.is_error
    assert "secret insight" not in text_of(result)
    assert "Settlement failed" in text_of(result)
    assert challenge_of(result).error is not None and "Settlement failed" in (
        challenge_of(result).error or ""
    )
    request = await shop.ledger.get(required.accepts[0].extra["paymentRequestId"])
    assert request is not None and request.state is State.ISSUED


async def test_a_settlement_crash_after_the_run_says_the_tool_ran_and_how_to_get_its_output(
    shop: Shop, tmp_path: Path
) -> None:
    # A real facilitator settles on the chain, but its answer is lost (HTTP 502): money moved,
    # and the gate cannot know it. A remote backend cannot read the chain itself.
    lost_answer = Interposer(
        facilitator_app(shop.chain.settlement()),
        status_of=lambda path, status, _: 502 if path == "/settle" else status,
    )
    runs: list[str] = []
    async with serving(lost_answer) as url:
        backend = FacilitatorSettlement(url, network=shop.chain.network_info)
        payments = Payments(
            pay_to=shop.payee,
            network=shop.chain.network_info,
            settlement=backend,
            ledger=SQLiteLedger(tmp_path / "ledger.sqlite"),
        )
        server = new_server(shop.framework, "spec", payments)

        @server.tool()
        @paid(price="0.05", settle="after")
        async def premium(topic: str) -> str:
            runs.append(topic)
            return f"secret insight on {topic}"

        async with Client(connectable(server)) as client:
            required = challenge_of(await client.call_tool("premium", {"topic": "x"}))
            request_id = required.accepts[0].extra["paymentRequestId"]
            before = shop.balances()

            result = await client.call_tool(
                "premium", {"topic": "x"}, meta=payment_meta(sign_payment(shop.payer, required))
            )

            assert runs == ["x"] and result.is_error
            text = text_of(result)
            assert "secret insight" not in text
            assert "The tool did not run" not in text
            assert "The tool ran, but its output is withheld until the payment is confirmed" in text
            assert "reconciled from the chain" in text and "without a second charge" in text
            assert f'payment_request_id="{request_id}"' in text
            # The signed payment is kept where reconciliation finds it; the money did move.
            stuck = await payments.ledger.get(request_id)
            assert stuck is not None and stuck.state is State.SETTLING and stuck.payload
            assert shop.balances() == (before[0] - PRICE, before[1] + PRICE)

            # Reconciliation (with a backend that reads the chain) records the settlement once
            # the run's settling lease has lapsed (the heartbeat may have renewed it mid-run) ...
            lease = payments.redemption.lease_seconds
            reconciler = Reconciler(
                payments.ledger,
                shop.chain.settlement(),
                payments.asset,
                grace_seconds=-1,
                clock=lambda: payments.clock() + lease + 1,
            )
            assert (await reconciler.run()).settled == [request_id]
            # ... and the retry the message described gets the output, without a second charge.
            retry = await client.call_tool("premium", {"topic": "x", "payment_request_id": request_id})

            assert not retry.is_error, text_of(retry)
            assert text_of(retry) == "secret insight on x"
            assert runs == ["x", "x"]
            assert shop.balances() == (before[0] - PRICE, before[1] + PRICE)
            consumed = await payments.ledger.get(request_id)
            assert consumed is not None and consumed.state is State.CONSUMED
        await backend.aclose()

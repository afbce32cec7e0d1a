"""The MCP call's span says what happened to the payment; a challenge is not an error span.

Real OpenTelemetry SDK (in-memory exporter), real MCP client sessions, both frameworks.
"""

from __future__ import annotations

import pytest
from mcp import Client
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from tests.gate.conftest import PRICE, Shop, challenge_of, text_of
from tests.telemetry.conftest import DrainedFirst, Unreachable, call_spans, children_of
from x402_mcp.client.payer import sign_payment
from x402_mcp.core.challenge import META_PAYMENT, META_REQUEST_ID

pytestmark = pytest.mark.anyio


async def test_a_challenge_is_marked_payment_required_and_not_an_error(
    client: Client, shop: Shop, spans: InMemorySpanExporter
) -> None:
    required = challenge_of(await client.call_tool("answer", {"question": "why"}))
    request_id = required.accepts[0].extra["paymentRequestId"]

    [span] = call_spans(spans)
    attributes = dict(span.attributes or {})
    assert attributes["x402.outcome"] == "payment_required"
    assert attributes["x402.payment_request_id"] == request_id
    assert attributes["x402.amount"] == str(PRICE)
    assert attributes["x402.network"] == shop.chain.network
    assert span.status.status_code is not StatusCode.ERROR
    assert [child.name for child in children_of(spans, span)] == ["x402.ledger.issue"]


async def test_a_paid_call_carries_its_settlement_and_nests_verify_settle_and_ledger_spans(
    client: Client, shop: Shop, spans: InMemorySpanExporter
) -> None:
    required = challenge_of(await client.call_tool("answer", {"question": "why"}))
    payment = sign_payment(shop.payer, required)
    result = await client.call_tool("answer", {"question": "why"}, meta={META_PAYMENT: payment.dump()})
    assert not result.is_error, text_of(result)

    _, paid_span = call_spans(spans)
    attributes = dict(paid_span.attributes or {})
    assert attributes["x402.outcome"] == "paid"
    assert attributes["x402.scheme"] == "exact"
    assert attributes["x402.amount"] == str(PRICE)
    assert attributes["x402.payment_request_id"] == required.accepts[0].extra["paymentRequestId"]
    assert attributes["x402.transaction"] == (result.meta or {})["x402/payment-response"]["transaction"]
    assert paid_span.status.status_code is StatusCode.UNSET
    names = {child.name for child in children_of(spans, paid_span)}
    assert {"x402.verify", "x402.settle", "x402.ledger.begin_settlement", "x402.ledger.settled"} <= names
    assert "x402.ledger.consume" in names
    for child in children_of(spans, paid_span):
        assert child.status.status_code is not StatusCode.ERROR, child.name


async def test_a_redemption_by_id_is_marked_redeemed(
    client: Client, shop: Shop, spans: InMemorySpanExporter
) -> None:
    required = challenge_of(await client.call_tool("answer", {"question": "q"}))
    request_id = required.accepts[0].extra["paymentRequestId"]
    shop.fail_next.append(True)
    payment = sign_payment(shop.payer, required)
    failed = await client.call_tool("answer", {"question": "q"}, meta={META_PAYMENT: payment.dump()})
    assert failed.is_error
    result = await client.call_tool("answer", {"question": "q"}, meta={META_REQUEST_ID: request_id})
    assert not result.is_error, text_of(result)

    _, paid_then_failed, redeemed = call_spans(spans)
    assert (paid_then_failed.attributes or {})["x402.outcome"] == "paid"
    # The tool failed after paying: that is an error the framework reports, and stays one.
    assert paid_then_failed.status.status_code is StatusCode.ERROR
    assert (redeemed.attributes or {})["x402.outcome"] == "redeemed"
    assert (redeemed.attributes or {})["x402.payment_request_id"] == request_id
    assert "x402.settle" not in {child.name for child in children_of(spans, redeemed)}


async def test_a_refused_payment_names_its_reason(
    client: Client, shop: Shop, spans: InMemorySpanExporter
) -> None:
    required = challenge_of(await client.call_tool("answer", {"question": "why"}))
    broke = shop.chain.new_account(usdc="0")
    payment = sign_payment(broke, required)
    result = await client.call_tool("answer", {"question": "why"}, meta={META_PAYMENT: payment.dump()})
    assert result.is_error
    assert shop.runs == {}

    _, refused = call_spans(spans)
    attributes = dict(refused.attributes or {})
    assert attributes["x402.outcome"] == "refused"
    assert attributes["x402.refusal.reason"] == "invalid_exact_evm_insufficient_balance"
    [verify] = [child for child in children_of(spans, refused) if child.name == "x402.verify"]
    assert (verify.attributes or {})["x402.refusal.reason"] == "invalid_exact_evm_insufficient_balance"
    assert verify.status.status_code is StatusCode.UNSET


async def test_a_free_tool_gets_no_payment_attributes(
    client: Client, shop: Shop, spans: InMemorySpanExporter
) -> None:
    assert not (await client.call_tool("ping", {})).is_error
    [span] = call_spans(spans, "ping")
    assert not any(key.startswith("x402.") for key in (span.attributes or {}))


@pytest.mark.parametrize("backend", [DrainedFirst, Unreachable])
async def test_a_failed_settlement_is_marked_settle_failed_and_stays_an_error(
    client: Client, shop: Shop, spans: InMemorySpanExporter, backend: type[DrainedFirst]
) -> None:
    shop.payments.collector.settlement = backend(shop.payments.collector.settlement, shop)
    required = challenge_of(await client.call_tool("answer", {"question": "why"}))
    payment = sign_payment(shop.payer, required)
    result = await client.call_tool("answer", {"question": "why"}, meta={META_PAYMENT: payment.dump()})
    assert result.is_error
    assert shop.runs == {}

    _, failed = call_spans(spans)
    attributes = dict(failed.attributes or {})
    assert attributes["x402.outcome"] == "settle_failed"
    [settle] = [child for child in children_of(spans, failed) if child.name == "x402.settle"]
    if backend is Unreachable:
        assert attributes["x402.refusal.reason"] == "backend_error"
        assert settle.status.status_code is StatusCode.ERROR
        assert (settle.attributes or {})["error.type"] == "SettlementError"
    else:
        assert attributes["x402.refusal.reason"] == (settle.attributes or {})["x402.refusal.reason"]
        assert settle.status.status_code is StatusCode.UNSET


async def test_an_unpaid_id_answered_with_its_challenge_again_is_not_an_error(
    client: Client, shop: Shop, spans: InMemorySpanExporter
) -> None:
    required = challenge_of(await client.call_tool("answer", {"question": "why"}))
    request_id = required.accepts[0].extra["paymentRequestId"]
    again = await client.call_tool("answer", {"question": "why"}, meta={META_REQUEST_ID: request_id})
    assert challenge_of(again).accepts[0].extra["paymentRequestId"] == request_id

    _, restated = call_spans(spans)
    attributes = dict(restated.attributes or {})
    assert attributes["x402.outcome"] == "payment_required"
    assert attributes["x402.payment_request_id"] == request_id
    assert restated.status.status_code is not StatusCode.ERROR
    # Nothing new was quoted: the restated challenge is not counted as issued again.
    issued = shop.payments.telemetry.metrics.registry.counters["x402.requests.issued"]
    assert sum(issued.values()) == 1

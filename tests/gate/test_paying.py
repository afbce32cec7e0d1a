"""Agents pay with `_meta["x402/payment"]`: settled on chain before the tool runs, exactly once."""

from __future__ import annotations

import base64
import json
import time
from decimal import Decimal
from typing import Any

import anyio
import pytest
from eth_account import Account
from mcp import Client
from mcp.server.mcpserver.exceptions import ToolError

from tests.gate.conftest import PRICE, Shop, challenge_of, text_of
from x402_mcp import paid
from x402_mcp.client.payer import sign_payment
from x402_mcp.core.challenge import META_PAYMENT, META_PAYMENT_RESPONSE, META_REQUEST_ID
from x402_mcp.core.evm import sign_authorization
from x402_mcp.core.ids import new_request_id
from x402_mcp.core.states import State
from x402_mcp.core.wire import PaymentPayload, PaymentPayloadV1, PaymentRequired, PaymentRequirements

pytestmark = pytest.mark.anyio


async def _challenge(client: Client, tool: str = "answer", **arguments: Any) -> PaymentRequired:
    return challenge_of(await client.call_tool(tool, arguments or {"question": "why"}))


async def test_paid_retry_settles_on_chain_and_runs_once(client: Client, shop: Shop) -> None:
    required = await _challenge(client)
    before = shop.balances()

    payment = sign_payment(shop.payer, required)
    result = await client.call_tool("answer", {"question": "why"}, meta={META_PAYMENT: payment.dump()})

    assert not result.is_error, text_of(result)
    assert text_of(result) == "answer to why"
    assert shop.runs == {"answer": 1}
    assert shop.balances() == (before[0] - PRICE, before[1] + PRICE)
    receipt = (result.meta or {})[META_PAYMENT_RESPONSE]
    assert receipt["success"] is True
    assert receipt["network"] == shop.chain.network
    assert receipt["payer"].lower() == shop.payer.address.lower()
    assert receipt["transaction"].startswith("0x") and len(receipt["transaction"]) == 66

    request = await shop.ledger.get(required.accepts[0].extra["paymentRequestId"])
    assert request is not None and request.state is State.CONSUMED
    assert request.tx_hash == receipt["transaction"]
    [settlement] = await shop.ledger.settlements(request.id)
    assert (settlement.amount, settlement.tx_hash) == (PRICE, receipt["transaction"])


@pytest.mark.parametrize("encoding", ["json-string", "base64"])
async def test_payment_may_arrive_as_json_text_or_base64(client: Client, shop: Shop, encoding: str) -> None:
    payment = sign_payment(shop.payer, await _challenge(client))
    text = payment.to_json()
    raw = text if encoding == "json-string" else base64.b64encode(text.encode()).decode()
    result = await client.call_tool("answer", {"question": "why"}, meta={META_PAYMENT: raw})
    assert not result.is_error, text_of(result)
    assert shop.runs == {"answer": 1}


async def test_replayed_payment_is_refused_and_moves_no_money(client: Client, shop: Shop) -> None:
    payment = sign_payment(shop.payer, await _challenge(client))
    first = await client.call_tool("answer", {"question": "why"}, meta={META_PAYMENT: payment.dump()})
    assert not first.is_error
    after_first = shop.balances()

    replay = await client.call_tool("answer", {"question": "why"}, meta={META_PAYMENT: payment.dump()})

    assert replay.is_error
    assert "already" in text_of(replay) and "used" in text_of(replay)
    assert shop.balances() == after_first
    assert shop.runs == {"answer": 1}


def _tampered(shop: Shop, required: PaymentRequired, case: str) -> dict[str, Any]:
    """A payment that is wrong in exactly one way."""
    option = required.accepts[0]
    now = int(time.time())
    accepted = option
    sign_for = option
    signer = shop.payer
    overrides: dict[str, Any] = {}
    if case == "underpaid":
        overrides["value"] = PRICE - 1
    elif case == "wrong payee":
        sign_for = option.model_copy(update={"pay_to": Account.create().address})
        accepted = sign_for
    elif case == "wrong asset":
        accepted = option.model_copy(update={"asset": Account.create().address})
    elif case == "wrong network":
        accepted = option.model_copy(update={"network": "eip155:84532"})
        sign_for = accepted
    elif case == "expired":
        overrides.update(valid_after=now - 1000, valid_before=now - 10)
    elif case == "not yet valid":
        overrides["valid_after"] = now + 3600
    elif case == "bad signature":
        signer = Account.create()
    payload = sign_authorization(signer, sign_for, **overrides)
    if case == "bad signature":
        payload.authorization.from_ = shop.payer.address
    return PaymentPayload(resource=required.resource, accepted=accepted, payload=payload).dump()


BAD_PAYMENTS = {
    "underpaid": "$0.049999",
    "wrong payee": "payee is",
    "wrong asset": "asset",
    "wrong network": "network eip155:84532",
    "expired": "expired",
    "not yet valid": "not valid until",
    "bad signature": "signature does not match",
}


@pytest.mark.parametrize("case", sorted(BAD_PAYMENTS))
async def test_bad_payment_gets_a_clear_error_and_changes_nothing(
    client: Client, shop: Shop, case: str
) -> None:
    required = await _challenge(client)
    request_id = required.accepts[0].extra["paymentRequestId"]
    before = shop.balances()

    result = await client.call_tool(
        "answer", {"question": "why"}, meta={META_PAYMENT: _tampered(shop, required, case)}
    )

    assert result.is_error
    assert BAD_PAYMENTS[case] in text_of(result), text_of(result)
    # The caller is pointed at the same request again, which is still payable.
    assert challenge_of(result).accepts[0].extra["paymentRequestId"] == request_id
    assert shop.balances() == before
    assert shop.runs == {}
    request = await shop.ledger.get(request_id)
    assert request is not None and request.state is State.ISSUED
    assert await shop.ledger.settlements() == []
    trail = await shop.ledger.audit_trail(request_id)
    assert [event for _, _, event, _ in trail] == ["issue", "refused"]

    # And the honest payment still goes through afterwards.
    good = await client.call_tool(
        "answer", {"question": "why"}, meta={META_PAYMENT: sign_payment(shop.payer, required).dump()}
    )
    assert not good.is_error, text_of(good)


async def test_unknown_payment_request_is_refused_and_nothing_is_quoted(client: Client, shop: Shop) -> None:
    required = await _challenge(client)
    option = required.accepts[0]
    unknown = new_request_id()
    forged = option.model_copy(update={"extra": {**option.extra, "paymentRequestId": unknown}})
    payment = PaymentPayload(accepted=forged, payload=sign_authorization(shop.payer, forged))
    before = shop.balances()

    result = await client.call_tool("answer", {"question": "why"}, meta={META_PAYMENT: payment.dump()})

    assert result.is_error
    assert f"there is no payment request {unknown}" in text_of(result)
    assert "call answer again without a payment" in text_of(result)
    assert result.structured_content is None  # nothing to pay: no challenge, no fresh quote
    assert shop.balances() == before and shop.runs == {}
    assert len(await shop.ledger.requests()) == 1  # only the challenge's own request


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not json at all", "neither a JSON object nor base64"),
        ("{broken", "not valid JSON"),
        (42, "must be a JSON object"),
        ({"x402Version": 7}, "unsupported x402Version 7"),
        ({"x402Version": 2, "accepted": {}}, "invalid"),
        ("x" * 20_000, "at most 16384"),
    ],
)
async def test_malformed_meta_is_refused(client: Client, shop: Shop, raw: Any, message: str) -> None:
    before = shop.balances()
    result = await client.call_tool("answer", {"question": "why"}, meta={META_PAYMENT: raw})
    assert result.is_error
    assert message in text_of(result), text_of(result)
    assert shop.balances() == before and shop.runs == {}
    assert await shop.ledger.settlements() == []


async def test_twenty_concurrent_retries_with_one_payment_run_the_tool_once(
    client: Client, shop: Shop
) -> None:
    payment = sign_payment(shop.payer, await _challenge(client)).dump()
    before = shop.balances()
    results = []

    async def retry() -> None:
        results.append(await client.call_tool("answer", {"question": "why"}, meta={META_PAYMENT: payment}))

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(retry)

    assert len(results) == 20
    assert sum(not result.is_error for result in results) == 1
    assert shop.runs == {"answer": 1}
    assert shop.balances() == (before[0] - PRICE, before[1] + PRICE)
    for refused in (result for result in results if result.is_error):
        assert any(word in text_of(refused) for word in ("in use", "being settled", "already")), text_of(
            refused
        )


async def test_dynamic_price_is_paid_as_quoted(client: Client, shop: Shop) -> None:
    words = " ".join(["word"] * 40)
    required = await _challenge(client, "summarize", words=words)
    assert required.accepts[0].amount == "40000"
    before = shop.balances()

    result = await client.call_tool(
        "summarize", {"words": words}, meta={META_PAYMENT: sign_payment(shop.payer, required).dump()}
    )

    assert not result.is_error, text_of(result)
    assert text_of(result) == "summary of 40 words"
    assert shop.balances() == (before[0] - 40_000, before[1] + 40_000)


async def test_a_payment_does_not_cover_a_dearer_call(client: Client, shop: Shop) -> None:
    required = await _challenge(client, "summarize", words="a b c")  # $0.01
    before = shop.balances()
    dearer = {"words": " ".join(["word"] * 500)}  # $0.50

    result = await client.call_tool(
        "summarize", dearer, meta={META_PAYMENT: sign_payment(shop.payer, required).dump()}
    )

    assert result.is_error
    assert "covers $0.01, but this call costs $0.50" in text_of(result)
    assert shop.balances() == before and shop.runs == {}


async def test_a_failed_tool_keeps_the_payment_for_another_try(client: Client, shop: Shop) -> None:
    payment = sign_payment(shop.payer, await _challenge(client)).dump()
    shop.fail_next.append(True)
    before = shop.balances()

    failed = await client.call_tool("answer", {"question": "why"}, meta={META_PAYMENT: payment})
    assert failed.is_error and "answer engine is down" in text_of(failed)
    assert shop.balances() == (before[0] - PRICE, before[1] + PRICE)

    retried = await client.call_tool("answer", {"question": "why"}, meta={META_PAYMENT: payment})
    assert not retried.is_error, text_of(retried)
    assert shop.runs == {"answer": 2}
    assert shop.balances() == (before[0] - PRICE, before[1] + PRICE)


def _requirements(required: PaymentRequired) -> PaymentRequirements:
    return required.accepts[0]


async def test_a_v2_payment_without_its_request_id_is_refused_by_name(client: Client, shop: Shop) -> None:
    # Signed for answer's request, then its id removed and sent with a summarize call at the same
    # price ($0.05 for 50 words): it must neither buy summarize nor be matched to a fresh quote.
    option = _requirements(await _challenge(client))
    bare = option.model_copy(
        update={"extra": {"name": option.extra["name"], "version": option.extra["version"]}}
    )
    payment = PaymentPayload(accepted=bare, payload=sign_authorization(shop.payer, bare))
    before = shop.balances()

    for tool, arguments in (("summarize", {"words": " ".join(["w"] * 50)}), ("answer", {"question": "why"})):
        result = await client.call_tool(tool, arguments, meta={META_PAYMENT: json.loads(payment.to_json())})
        assert result.is_error
        assert "the payment names no payment request" in text_of(result), text_of(result)
        assert "accepted.extra.paymentRequestId is missing" in text_of(result)
        assert result.structured_content is None

    assert shop.runs == {} and shop.balances() == before
    assert len(await shop.ledger.requests()) == 1 and await shop.ledger.settlements() == []


async def test_a_payment_naming_its_request_buys_only_that_requests_tool(client: Client, shop: Shop) -> None:
    required = await _challenge(client)  # answer, $0.05
    request_id = required.accepts[0].extra["paymentRequestId"]
    payment = sign_payment(shop.payer, required).dump()
    before = shop.balances()

    same_price = {"words": " ".join(["w"] * 50)}  # summarize at $0.05
    result = await client.call_tool("summarize", same_price, meta={META_PAYMENT: payment})

    assert result.is_error
    assert f"payment request {request_id} is for tool 'answer', not 'summarize'" in text_of(result)
    assert shop.runs == {} and shop.balances() == before
    request = await shop.ledger.get(request_id)
    assert request is not None and request.state is State.ISSUED
    # It still pays for what it was signed for.
    paid = await client.call_tool("answer", {"question": "why"}, meta={META_PAYMENT: payment})
    assert not paid.is_error, text_of(paid)
    assert shop.runs == {"answer": 1}


def _v1_payment(shop: Shop, option: PaymentRequirements) -> dict[str, Any]:
    """What an x402 v1 client sends: scheme, network and the authorization, no `accepted`."""
    authorization = sign_authorization(shop.payer, option)
    return PaymentPayloadV1(scheme="exact", network=option.network, payload=authorization).dump()


async def test_an_x402_v1_payment_pays_a_fresh_quote_of_its_call_once(client: Client, shop: Shop) -> None:
    option = _requirements(await _challenge(client))  # where the v1 client learned price and payee
    payment = _v1_payment(shop, option)
    before = shop.balances()

    paid = await client.call_tool("answer", {"question": "why"}, meta={META_PAYMENT: payment})
    replay = await client.call_tool("answer", {"question": "why"}, meta={META_PAYMENT: payment})

    assert not paid.is_error, text_of(paid)
    assert shop.runs == {"answer": 1}
    assert shop.balances() == (before[0] - PRICE, before[1] + PRICE)
    receipt_id = (paid.meta or {})[META_REQUEST_ID]
    assert receipt_id != option.extra["paymentRequestId"]  # a fresh quote of this call
    fresh = await shop.ledger.get(receipt_id)
    assert fresh is not None and (fresh.state, fresh.price) == (State.CONSUMED, PRICE)
    assert replay.is_error and shop.runs == {"answer": 1}
    # The replay's quote was withdrawn: the caller holds no open quote but the first challenge's.
    states = sorted(request.state for request in await shop.ledger.requests())
    assert states == sorted([State.ISSUED, State.CONSUMED, State.EXPIRED])


async def test_an_x402_v1_payment_that_does_not_fit_the_call_mints_nothing(
    client: Client, shop: Shop
) -> None:
    option = _requirements(await _challenge(client))  # $0.05
    cheap = option.model_copy(update={"amount": "10000"})
    before = shop.balances()

    result = await client.call_tool(
        "answer", {"question": "why"}, meta={META_PAYMENT: _v1_payment(shop, cheap)}
    )

    assert result.is_error and "the price is $0.05" in text_of(result), text_of(result)
    assert shop.runs == {} and shop.balances() == before
    assert len(await shop.ledger.requests()) == 1


async def test_a_v1_payment_with_a_request_id_is_refused(client: Client, shop: Shop) -> None:
    option = _requirements(await _challenge(client))
    call = {"question": "why", "payment_request_id": option.extra["paymentRequestId"]}
    result = await client.call_tool("answer", call, meta={META_PAYMENT: _v1_payment(shop, option)})
    assert result.is_error and "leave out payment_request_id" in text_of(result)
    assert shop.runs == {}


def _add_pages_tool(shop: Shop) -> list[bool]:
    """`pages`: $0.01 a page, failing while the returned list says so (a flaky dynamic-price tool)."""
    failing: list[bool] = []

    @shop.server.tool()
    @paid(price=lambda pages: str(Decimal("0.01") * pages))
    def pages(pages: int) -> str:
        shop.runs["pages"] = shop.runs.get("pages", 0) + 1
        if failing and failing.pop():
            raise ToolError("the printer jammed")
        return f"{pages} pages"

    return failing


async def test_a_cheap_payment_whose_run_failed_does_not_buy_a_dearer_call(
    client: Client, shop: Shop
) -> None:
    failing = _add_pages_tool(shop)
    required = challenge_of(await client.call_tool("pages", {"pages": 1}))  # $0.01
    request_id = required.accepts[0].extra["paymentRequestId"]
    payment = sign_payment(shop.payer, required).dump()
    failing.append(True)
    before = shop.balances()
    failed = await client.call_tool("pages", {"pages": 1}, meta={META_PAYMENT: payment})
    assert failed.is_error and "printer jammed" in text_of(failed)

    # The same payment again, with arguments that price the call at $5.00.
    dearer = await client.call_tool("pages", {"pages": 500}, meta={META_PAYMENT: payment})

    assert dearer.is_error
    assert f"payment request {request_id} covers $0.01, but this call costs $5.00" in text_of(dearer)
    assert shop.runs == {"pages": 1}
    request = await shop.ledger.get(request_id)
    assert request is not None and request.state is State.PAID  # still redeemable for what it bought
    assert shop.balances() == (before[0] - 10_000, before[1] + 10_000)
    cheap = await client.call_tool("pages", {"pages": 1}, meta={META_PAYMENT: payment})
    assert not cheap.is_error and text_of(cheap) == "1 pages"
    assert shop.balances() == (before[0] - 10_000, before[1] + 10_000)


async def test_a_plain_retry_of_a_dearer_call_gets_its_own_quote(client: Client, shop: Shop) -> None:
    failing = _add_pages_tool(shop)
    required = challenge_of(await client.call_tool("pages", {"pages": 1}))
    failing.append(True)
    await client.call_tool(
        "pages", {"pages": 1}, meta={META_PAYMENT: sign_payment(shop.payer, required).dump()}
    )

    dearer = challenge_of(await client.call_tool("pages", {"pages": 500}))

    assert dearer.accepts[0].amount == "5000000"
    assert dearer.accepts[0].extra["paymentRequestId"] != required.accepts[0].extra["paymentRequestId"]
    assert shop.runs == {"pages": 1}


async def test_a_ledger_failure_after_the_run_says_the_tool_ran_and_how_to_retry(
    client: Client, shop: Shop
) -> None:
    @shop.server.tool()
    @paid(price="0.05")
    async def fragile(topic: str) -> str:
        shop.runs["fragile"] = shop.runs.get("fragile", 0) + 1
        if shop.runs["fragile"] == 1:
            await shop.ledger.close()  # the ledger goes away while the tool runs
        return f"about {topic}"

    required = challenge_of(await client.call_tool("fragile", {"topic": "x"}))
    request_id = required.accepts[0].extra["paymentRequestId"]
    before = shop.balances()

    result = await client.call_tool(
        "fragile", {"topic": "x"}, meta={META_PAYMENT: sign_payment(shop.payer, required).dump()}
    )

    text = text_of(result)
    assert result.is_error and "about x" not in text and "did not run" not in text
    assert "The tool ran, but its output is withheld" in text
    assert f'payment_request_id="{request_id}"' in text
    await shop.ledger.open()
    request = await shop.ledger.get(request_id)
    assert request is not None and request.state is State.REDEEMING  # paid, its run unrecorded
    # Once the run's lease has lapsed, the retry the message described gets the output.
    shop.payments.clock = lambda: time.time() + shop.payments.redemption.lease_seconds + 1
    retry = await client.call_tool("fragile", {"topic": "x", "payment_request_id": request_id})
    assert not retry.is_error and text_of(retry) == "about x", text_of(retry)
    assert shop.runs["fragile"] == 2
    assert shop.balances() == (before[0] - PRICE, before[1] + PRICE)


async def test_a_payment_and_an_id_naming_two_requests_are_refused(client: Client, shop: Shop) -> None:
    required = await _challenge(client)
    other = new_request_id()
    call = {"question": "why", "payment_request_id": other}
    result = await client.call_tool(
        "answer", call, meta={META_PAYMENT: sign_payment(shop.payer, required).dump()}
    )
    assert result.is_error and f"but the call names {other}" in text_of(result)
    assert shop.runs == {}

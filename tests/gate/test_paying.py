"""Agents pay with `_meta["x402/payment"]`: settled on chain before the tool runs, exactly once."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import anyio
import pytest
from eth_account import Account
from mcp import Client

from tests.gate.conftest import PRICE, Shop, challenge_of, text_of
from x402_mcp.challenge import META_PAYMENT, META_PAYMENT_RESPONSE
from x402_mcp.evm import sign_authorization
from x402_mcp.lifecycle import State
from x402_mcp.payer import sign_payment
from x402_mcp.wire import PaymentPayload, PaymentRequired, PaymentRequirements

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


async def test_unknown_payment_request_is_refused(client: Client, shop: Shop) -> None:
    required = await _challenge(client)
    option = required.accepts[0]
    forged = option.model_copy(update={"extra": {**option.extra, "paymentRequestId": "pr_doesnotexist"}})
    payment = PaymentPayload(accepted=forged, payload=sign_authorization(shop.payer, forged))
    before = shop.balances()

    result = await client.call_tool("answer", {"question": "why"}, meta={META_PAYMENT: payment.dump()})

    assert result.is_error
    assert "no payment request pr_doesnotexist" in text_of(result)
    assert shop.balances() == before and shop.runs == {}


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


async def test_payload_without_request_id_is_quoted_and_settled(client: Client, shop: Shop) -> None:
    # A generic x402 client may build its payment from requirements it cached.
    option = _requirements(await _challenge(client))
    bare = option.model_copy(
        update={"extra": {"name": option.extra["name"], "version": option.extra["version"]}}
    )
    payment = PaymentPayload(accepted=bare, payload=sign_authorization(shop.payer, bare))

    result = await client.call_tool(
        "answer", {"question": "why"}, meta={META_PAYMENT: json.loads(payment.to_json())}
    )

    assert not result.is_error, text_of(result)
    assert shop.runs == {"answer": 1}

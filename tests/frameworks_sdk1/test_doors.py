"""The gate through the older line's doors: prices listed, challenge, payment through `_meta`,
receipts, redemption by id, refusals; the same assertions on SDK 1.x FastMCP and FastMCP 3."""

from __future__ import annotations

import json

import pytest

from tests.sdk_client import SDK1Client
from x402_mcp.client.payer import read_challenge, sign_payment
from x402_mcp.core.challenge import (
    META_HOSTED_URL,
    META_PAYMENT,
    META_PAYMENT_RESPONSE,
    META_PRICE,
    META_REQUEST_ID,
    REQUEST_ID_ARGUMENT,
)

from .conftest import PRICE, Shop

pytestmark = pytest.mark.anyio


async def test_paid_tools_list_their_price_and_the_request_id_argument(
    shop: Shop, client: SDK1Client
) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert (tools["answer"].meta or {})[META_PRICE]["amount"] == str(PRICE)
    assert (tools["shout"].meta or {})[META_PRICE]["amount"] == "10000"
    assert (tools["answer"].meta or {})[META_PRICE]["payTo"] == shop.payee
    assert REQUEST_ID_ARGUMENT in tools["answer"].input_schema["properties"]
    assert META_PRICE not in (tools["ping"].meta or {})
    assert REQUEST_ID_ARGUMENT not in tools["ping"].input_schema.get("properties", {})


async def test_an_unpaid_call_is_challenged_and_runs_nothing(shop: Shop, client: SDK1Client) -> None:
    result = await client.call_tool("answer", {"question": "why"})
    assert result.is_error
    # SDK 1.x gives `-> str` tools an outputSchema: the challenge leaves structuredContent out.
    assert result.structured_content is None
    required = read_challenge(result)
    (offer,) = required.accepts
    assert (offer.amount, offer.pay_to) == (str(PRICE), shop.payee)
    meta = result.meta or {}
    assert meta[META_HOSTED_URL] == f"http://pay.test/pay/{meta[META_REQUEST_ID]}"
    assert shop.runs == {}
    assert (await client.call_tool("ping", {})).content[0].text == "pong"  # type: ignore[union-attr]


@pytest.mark.parametrize("tool", ["answer", "shout"])
async def test_a_payment_in_meta_runs_the_tool_once_and_returns_a_receipt(
    shop: Shop, client: SDK1Client, tool: str
) -> None:
    arguments = {"question": "why"} if tool == "answer" else {"words": "hey"}
    price = PRICE if tool == "answer" else 10_000
    before = shop.balances()
    challenge = await client.call_tool(tool, arguments)
    payment = sign_payment(shop.payer, read_challenge(challenge)).model_dump(by_alias=True, exclude_none=True)

    result = await client.call_tool(tool, arguments, meta={META_PAYMENT: payment})
    assert not result.is_error, result.content
    receipt = (result.meta or {})[META_PAYMENT_RESPONSE]
    assert receipt["success"] is True and receipt["payer"].lower() == shop.payer.address.lower()
    if tool == "shout":
        assert result.structured_content == {"loud": "HEY"}
    assert shop.runs == {tool: 1}
    assert shop.balances() == (before[0] - price, before[1] + price)

    replayed = await client.call_tool(tool, arguments, meta={META_PAYMENT: payment})
    assert replayed.is_error
    assert shop.runs == {tool: 1} and shop.balances() == (before[0] - price, before[1] + price)


async def test_a_paid_request_whose_tool_failed_is_redeemed_by_its_id(shop: Shop, client: SDK1Client) -> None:
    shop.fail_next.append(True)
    challenge = await client.call_tool("answer", {"question": "again"})
    request_id = (challenge.meta or {})[META_REQUEST_ID]
    payment = sign_payment(shop.payer, read_challenge(challenge)).model_dump(by_alias=True, exclude_none=True)
    failed = await client.call_tool("answer", {"question": "again"}, meta={META_PAYMENT: payment})
    assert failed.is_error and "the answer engine is down" in json.dumps(failed.model_dump(mode="json"))

    redeemed = await client.call_tool("answer", {"question": "again", REQUEST_ID_ARGUMENT: request_id})
    assert not redeemed.is_error, redeemed.content
    assert redeemed.content[0].text == "answer to again"  # type: ignore[union-attr]
    assert shop.runs == {"answer": 2}
    assert shop.chain.balance_of(shop.payee) == PRICE  # paid once

    spent = await client.call_tool("answer", {"question": "again", REQUEST_ID_ARGUMENT: request_id})
    assert spent.is_error and shop.runs == {"answer": 2}


async def test_an_underpayment_is_refused_with_what_was_wrong(shop: Shop, client: SDK1Client) -> None:
    challenge = await client.call_tool("answer", {"question": "cheap"})
    required = read_challenge(challenge)
    cheap = required.model_copy(update={"accepts": [required.accepts[0].model_copy(update={"amount": "1"})]})
    payment = sign_payment(shop.payer, cheap).model_dump(by_alias=True, exclude_none=True)
    result = await client.call_tool("answer", {"question": "cheap"}, meta={META_PAYMENT: payment})
    assert result.is_error and shop.runs == {}
    assert shop.chain.balance_of(shop.payee) == 0

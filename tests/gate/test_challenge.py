"""An unpaid call of a paid tool gets the x402 MCP challenge; free tools are untouched."""

from __future__ import annotations

import json

import pytest
from mcp import Client

from tests.gate.conftest import PRICE, Shop, challenge_of, text_of
from x402_mcp import paid
from x402_mcp.core.challenge import META_ERROR, META_HOSTED_URL, META_PRICE, META_REQUEST_ID
from x402_mcp.core.states import State

pytestmark = pytest.mark.anyio


async def test_unpaid_call_gets_the_x402_challenge(client: Client, shop: Shop) -> None:
    result = await client.call_tool("answer", {"question": "why"})

    assert result.is_error
    required = challenge_of(result)
    assert required.x402_version == 2
    assert required.resource is not None and required.resource.url == "mcp://tool/answer"
    [option] = required.accepts
    assert option.scheme == "exact"
    assert option.network == shop.chain.network
    assert option.amount == str(PRICE)
    assert option.asset == shop.chain.usdc
    assert option.pay_to == shop.payee
    assert option.extra["name"] == shop.payments.asset.name
    assert option.extra["version"] == shop.payments.asset.version
    request_id = option.extra["paymentRequestId"]
    assert request_id.startswith("pr_") and len(request_id) >= 3 + 22  # at least 128 random bits

    # content[0] is the PaymentRequired as JSON (no structuredContent: `answer` declares an
    # outputSchema, see tests/test_challenge.py); content[1] is for people.
    assert json.loads(result.content[0].text) == (result.meta or {})[META_ERROR]  # type: ignore[union-attr]
    human = text_of(result).split("\n", 1)[1]
    assert "$0.05" in human and "one answer" in human
    assert f"http://pay.test/pay/{request_id}" in human
    assert f'payment_request_id="{request_id}"' in human

    meta = result.meta or {}
    assert meta[META_REQUEST_ID] == request_id
    assert meta[META_HOSTED_URL] == f"http://pay.test/pay/{request_id}"

    stored = await shop.ledger.get(request_id)
    assert stored is not None
    assert (stored.state, stored.tool, stored.price, stored.pay_to) == (
        State.ISSUED,
        "answer",
        PRICE,
        shop.payee,
    )
    assert stored.expires_at - stored.created_at == shop.payments.max_timeout_seconds
    assert shop.runs == {}


async def test_each_unpaid_call_mints_a_distinct_request(client: Client) -> None:
    first = challenge_of(await client.call_tool("answer", {"question": "a"}))
    second = challenge_of(await client.call_tool("answer", {"question": "a"}))
    assert first.accepts[0].extra["paymentRequestId"] != second.accepts[0].extra["paymentRequestId"]


async def test_free_tools_are_untouched(client: Client, shop: Shop) -> None:
    result = await client.call_tool("ping", {})
    assert not result.is_error
    assert text_of(result) == "pong"
    assert result.meta is None or META_REQUEST_ID not in result.meta


async def test_tools_list_advertises_prices_and_keeps_schemas(client: Client, shop: Shop) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}

    answer = tools["answer"]
    assert "$0.05 per call" in (answer.description or "")
    price = (answer.meta or {})[META_PRICE]
    assert price == {
        "amount": str(PRICE),
        "asset": shop.chain.usdc,
        "network": shop.chain.network,
        "payTo": shop.payee,
        "dynamic": False,
    }
    assert answer.input_schema["required"] == ["question"]
    assert set(answer.input_schema["properties"]) == {"question", "payment_request_id"}

    summarize = tools["summarize"]
    assert (summarize.meta or {})[META_PRICE]["dynamic"] is True
    assert "depends on the arguments" in (summarize.description or "")

    ping = tools["ping"]
    assert ping.meta is None or META_PRICE not in ping.meta
    assert "payment_request_id" not in ping.input_schema.get("properties", {})
    assert "Paid tool" not in (ping.description or "")


async def test_dynamic_price_follows_the_arguments(client: Client) -> None:
    short = challenge_of(await client.call_tool("summarize", {"words": "one two three"}))
    long = challenge_of(await client.call_tool("summarize", {"words": " ".join(["w"] * 250)}))
    assert short.accepts[0].amount == "10000"  # the $0.01 floor
    assert long.accepts[0].amount == "250000"  # 250 words at $0.001


async def test_a_price_function_finer_than_the_token_or_zero_is_refused_at_the_call_not_crashed(
    shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    # A fixed price finer than USDC's smallest unit is refused at decoration (tests/test_prices.py);
    # a price function's answer is only known at the call.
    @shop.server.tool()
    @paid(price=lambda cents: "0.0000001" if cents else "0")
    def finer(cents: bool) -> str:
        shop.runs["finer"] = shop.runs.get("finer", 0) + 1
        return "ran"

    async with Client(shop.connectable()) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        sub_unit = await client.call_tool("finer", {"cents": True})
        zero = await client.call_tool("finer", {"cents": False})
    assert "finer" in tools
    assert sub_unit.is_error and "price could not be computed" in text_of(sub_unit)
    assert "more than 6 decimal places" in text_of(sub_unit)
    assert zero.is_error and "price could not be computed" in text_of(zero) and "zero" in text_of(zero)
    assert "finer" not in shop.runs

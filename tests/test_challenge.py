"""The challenge as people, models and strict clients read it; price rules in `tools/list`."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from mcp import Client
from mcp.server import MCPServer
from mcp.types import CallToolResult, TextContent

from x402_mcp import ConfigurationError, Payments, paid
from x402_mcp.chains.devchain import DevChain
from x402_mcp.client.payer import read_challenge
from x402_mcp.core.challenge import (
    META_ERROR,
    META_PAYMENT,
    META_PRICE,
    Offer,
    challenge_result,
    describe_paid_tool,
    fit_output_schema,
    payment_sentence,
    retry_sentence,
)
from x402_mcp.core.networks import BASE_SEPOLIA
from x402_mcp.core.pricing import paid_spec
from x402_mcp.gate.paid import MAX_RULE_LENGTH
from x402_mcp.ledger.base import PaymentRequest
from x402_mcp.ledger.sqlite import SQLiteLedger

USDC = BASE_SEPOLIA.usdc
assert USDC is not None
OFFER = Offer(BASE_SEPOLIA, USDC, "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", "https://pay.example")
REQUEST = PaymentRequest(
    id="pr_abcdefghijklmnopqrstuv",
    tool="summarize",
    price=12_000,
    asset=USDC.address,
    network=BASE_SEPOLIA.caip2,
    pay_to=OFFER.pay_to,
    caller="session:abc",
    created_at=1000.0,
    expires_at=1600.0,
    max_timeout_seconds=600,
    description="an extractive summary",
)
ANONYMOUS = dataclasses.replace(REQUEST, caller=None)
LINK = "https://pay.example/pay/pr_abcdefghijklmnopqrstuv"
BY_ID = 'payment_request_id="pr_abcdefghijklmnopqrstuv"'


def per_word(text: str) -> str:
    return str(max(Decimal("0.01"), Decimal("0.001") * len(text.split())))


# -- the retry instruction -------------------------------------------------------------------


def test_a_caller_with_an_identity_is_told_to_call_again() -> None:
    assert (
        retry_sentence(REQUEST) == f"After paying, call summarize again (from another client, pass {BY_ID})."
    )


def test_a_caller_without_an_identity_is_told_to_name_the_id() -> None:
    sentence = retry_sentence(ANONYMOUS)
    assert sentence.startswith(f"After paying, call summarize again with {BY_ID}:")
    assert "a retry without it gets a new quote" in sentence


@pytest.mark.parametrize("request_", [REQUEST, ANONYMOUS], ids=["session", "stateless"])
def test_payment_required_error_is_the_whole_sentence(request_: PaymentRequest) -> None:
    result = challenge_result(request_, OFFER, now=1000.0)
    required = read_challenge(result)
    assert required.error == payment_sentence(request_, OFFER)
    assert required.error == (
        "Payment required: $0.012 for an extractive summary. "
        "This is test money on Base Sepolia, a test network: it has no value. "
        f"Pay at {LINK}. {retry_sentence(request_)}"
    )
    human = result.content[1]
    assert isinstance(human, TextContent)
    assert retry_sentence(request_) in human.text and "expires in about 10 minutes" in human.text


def test_a_refused_payment_leads_the_sentence() -> None:
    sentence = payment_sentence(REQUEST, OFFER, error="the authorization expired.")
    assert sentence.startswith(
        "The payment was not accepted: the authorization expired. Payment required: $0.012"
    )


# -- strict clients ---------------------------------------------------------------------------


def test_fit_output_schema_drops_structured_content_from_errors_only() -> None:
    challenge = challenge_result(REQUEST, OFFER, now=1000.0)
    wire = challenge.model_dump(by_alias=True, mode="json", exclude_none=True)
    assert "structuredContent" in wire

    fitted = fit_output_schema(wire)
    assert "structuredContent" not in fitted and fitted["isError"] is True
    assert (
        json.loads(fitted["content"][0]["text"]) == fitted["_meta"][META_ERROR] == wire["structuredContent"]
    )
    assert fit_output_schema(challenge).structured_content is None

    success = {"content": [], "structuredContent": {"result": "ok"}, "isError": False}
    assert fit_output_schema(success) == success
    ok = CallToolResult(content=[], structured_content={"result": "ok"})
    assert fit_output_schema(ok).structured_content == {"result": "ok"}


@pytest.fixture
def shop(tmp_path: Path) -> MCPServer[Any]:
    chain = DevChain()
    payments = Payments(
        pay_to=Account.create().address,
        network=chain.network,
        settlement=chain.settlement(),
        ledger=SQLiteLedger(tmp_path / "ledger.sqlite"),
        public_url="http://pay.test",
    )
    server = MCPServer("shop", extensions=[payments])

    @server.tool()
    @paid(price="0.05")
    def typed(question: str) -> str:
        return f"typed answer to {question}"

    @server.tool(structured_output=False)
    @paid(price="0.05")
    def untyped(question: str) -> str:
        return f"untyped answer to {question}"

    @server.tool()
    @paid(price=per_word, rule="$0.001 per word, at least $0.01")
    def summarize(text: str) -> str:
        return text

    return server


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_only_tools_with_an_output_schema_lose_structured_content(
    shop: MCPServer[Any], mode: str
) -> None:
    async with Client(shop, mode=mode) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        typed = await client.call_tool("typed", {"question": "q"})
        untyped = await client.call_tool("untyped", {"question": "q"})

    assert tools["typed"].output_schema is not None and tools["untyped"].output_schema is None
    assert typed.is_error and typed.structured_content is None
    # Without a schema to break, the x402 MCP transport's shape stays whole.
    assert untyped.is_error and untyped.structured_content == (untyped.meta or {})[META_ERROR]
    assert read_challenge(typed).accepts[0].amount == read_challenge(untyped).accepts[0].amount == "50000"


@pytest.mark.anyio
async def test_a_refused_payment_of_a_typed_tool_has_no_structured_content(shop: MCPServer[Any]) -> None:
    async with Client(shop, mode="legacy") as client:
        await client.list_tools()
        refused = await client.call_tool("typed", {"question": "q"}, meta={META_PAYMENT: "not a payment"})
    assert refused.is_error and refused.structured_content is None
    # Nothing payable to point at, so nothing was quoted: the refusal is words only.
    text = refused.content[0].text if isinstance(refused.content[0], TextContent) else ""
    assert text.startswith("The payment was not accepted: ")
    assert META_ERROR not in (refused.meta or {})


# -- price rules ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_tools_list_shows_a_dynamic_price_as_its_rule(shop: MCPServer[Any]) -> None:
    async with Client(shop, mode="auto") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    summarize = tools["summarize"]
    assert (summarize.meta or {})[META_PRICE]["rule"] == "$0.001 per word, at least $0.01"
    assert (summarize.meta or {})[META_PRICE]["amount"] is None
    assert (summarize.meta or {})[META_PRICE]["dynamic"] is True
    assert "Paid tool: $0.001 per word, at least $0.01 (USDC via x402" in (summarize.description or "")
    fixed = (tools["typed"].meta or {})[META_PRICE]
    assert fixed["amount"] == "50000" and "rule" not in fixed


def test_a_dynamic_price_without_a_rule_says_it_depends() -> None:
    tool: dict[str, Any] = {"name": "summarize", "description": "Summaries."}
    spec = paid_spec(paid(price=per_word)(lambda text: text))
    assert spec is not None
    describe_paid_tool(tool, spec, OFFER)
    assert "Paid tool: the price depends on the arguments (USDC via x402)." in tool["description"]
    assert str(tool["description"]).endswith(
        "This is test money on Base Sepolia, a test network: it has no value."
    )
    assert "rule" not in tool["_meta"][META_PRICE]


@pytest.mark.parametrize(
    ("price", "rule", "words"),
    [
        ("0.05", "$0.05 per call", "a fixed price is shown as it is"),
        (per_word, "   ", "non-empty"),
        (per_word, "x" * (MAX_RULE_LENGTH + 1), f"keep it to {MAX_RULE_LENGTH}"),
        (per_word, "$0.001 per word\n$1 for ever", "control characters"),
        (per_word, "per word\u202e", "control characters"),
    ],
)
def test_a_bad_rule_is_refused_with_what_is_wrong(price: Any, rule: str, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words.replace("$", r"\$")):
        paid(price=price, rule=rule)

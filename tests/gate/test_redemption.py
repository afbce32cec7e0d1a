"""Redeeming a paid request: each route, caller binding, expiry, and a failed tool keeping the payment.

Two callers need two identities, so most tests here run the shop over real
streamable HTTP on loopback, where each MCP session is a caller
(`session:<Mcp-Session-Id>`); the payment page is served beside `/mcp`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from mcp import Client
from mcp.types import CallToolResult

from tests.gate.conftest import PRICE, Shop, text_of
from tests.page.conftest import link_of, serving
from x402_mcp.client.payer import sign_payment
from x402_mcp.core.challenge import META_REQUEST_ID
from x402_mcp.core.ids import new_request_id
from x402_mcp.core.states import State
from x402_mcp.core.wire import PaymentRequired
from x402_mcp.ledger.base import PaymentRequest
from x402_mcp.schemes.exact.evm import requirements_for

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def over_http(shop: Shop) -> AsyncIterator[str]:
    shop.payments.public_url = None  # links follow the address the server is reached at
    async with serving(shop.http_app()) as base:
        yield f"{base}/mcp"


async def pay(shop: Shop, request_id: str) -> PaymentRequest:
    """Pay a request the way the page does (the shared collector), as shop.payer."""
    request = await shop.ledger.get(request_id)
    assert request is not None
    requirements = requirements_for(request, shop.payments.asset)
    payload = sign_payment(shop.payer, PaymentRequired(accepts=[requirements]))
    return await shop.payments.collector.collect(request, payload, requirements, decimals=6)


async def state_of(shop: Shop, request_id: str) -> State:
    request = await shop.ledger.get(request_id)
    assert request is not None
    return request.state


def refused(result: CallToolResult, words: str) -> None:
    assert result.is_error and words in text_of(result), text_of(result)


async def test_the_same_caller_redeems_without_anything(shop: Shop) -> None:
    async with over_http(shop) as url, Client(url, mode="legacy") as client:
        request_id, hosted = link_of(await client.call_tool("answer", {"question": "q"}))
        assert hosted.startswith(url.removesuffix("/mcp") + "/pay/pr_")
        await pay(shop, request_id)
        result = await client.call_tool("answer", {"question": "q"})
        again = await client.call_tool("answer", {"question": "q"})
    assert not result.is_error, text_of(result)
    assert (result.meta or {})[META_REQUEST_ID] == request_id
    assert again.is_error and link_of(again)[0] != request_id  # single use: a fresh quote
    assert shop.runs == {"answer": 1}


async def test_another_caller_without_the_id_is_refused(shop: Shop) -> None:
    async with over_http(shop) as url:
        async with Client(url, mode="legacy") as owner:
            request_id, _ = link_of(await owner.call_tool("answer", {"question": "q"}))
        await pay(shop, request_id)
        async with Client(url, mode="legacy") as stranger:
            result = await stranger.call_tool("answer", {"question": "q"})
    assert result.is_error and link_of(result)[0] != request_id
    assert shop.runs == {} and await state_of(shop, request_id) is State.PAID


@pytest.mark.parametrize("route", ["argument", "meta"])
async def test_any_caller_with_the_id_redeems_once(shop: Shop, route: str) -> None:
    async with over_http(shop) as url:
        async with Client(url, mode="legacy") as owner:
            request_id, _ = link_of(await owner.call_tool("answer", {"question": "q"}))
        await pay(shop, request_id)
        async with Client(url, mode="legacy") as other:
            if route == "argument":
                call = {"question": "q", "payment_request_id": request_id}
                first = await other.call_tool("answer", call)
                second = await other.call_tool("answer", call)
            else:
                meta = {META_REQUEST_ID: request_id}
                first = await other.call_tool("answer", {"question": "q"}, meta=meta)
                second = await other.call_tool("answer", {"question": "q"}, meta=meta)
    assert not first.is_error, text_of(first)
    assert first.content[0].text == "answer to q"  # type: ignore[union-attr]
    refused(second, "already used")
    assert shop.runs == {"answer": 1}


async def test_an_unpaid_id_gets_its_link_again(shop: Shop, client: Client) -> None:
    request_id, hosted = link_of(await client.call_tool("answer", {"question": "q"}))
    result = await client.call_tool("answer", {"question": "q", "payment_request_id": request_id})
    refused(result, "not paid yet")
    assert link_of(result) == (request_id, hosted) and shop.runs == {}


async def test_an_expired_id_gets_a_clear_error_and_no_new_quote(shop: Shop, client: Client) -> None:
    clock = [10_000.0]
    shop.payments.clock = lambda: clock[0]
    request_id, _ = link_of(await client.call_tool("answer", {"question": "q"}))
    clock[0] += shop.payments.max_timeout_seconds + 1
    result = await client.call_tool("answer", {"question": "q", "payment_request_id": request_id})
    refused(result, f"payment request {request_id} ")
    refused(result, "expired")
    refused(result, "To get a price, call answer again without a payment")
    assert result.structured_content is None and len(await shop.ledger.requests()) == 1
    # Doing as told gets a fresh link.
    fresh_id, fresh_url = link_of(await client.call_tool("answer", {"question": "q"}))
    assert fresh_id != request_id and fresh_url.endswith(f"/pay/{fresh_id}")
    assert shop.runs == {}


async def test_an_unknown_id_is_refused_and_nothing_is_quoted(shop: Shop, client: Client) -> None:
    unknown = new_request_id()
    result = await client.call_tool("answer", {"question": "q", "payment_request_id": unknown})
    refused(result, f"there is no payment request {unknown}")
    assert result.structured_content is None and await shop.ledger.requests() == []
    [(_, request_id, event, detail)] = await shop.ledger.audit_trail()
    assert (request_id, event) == (None, "refused") and unknown in detail
    assert shop.runs == {}


async def test_a_paid_id_does_not_buy_a_dearer_call(shop: Shop, client: Client) -> None:
    request_id, _ = link_of(await client.call_tool("summarize", {"words": "a b c"}))  # $0.01
    await pay(shop, request_id)
    dearer = {"words": " ".join(["w"] * 500), "payment_request_id": request_id}  # $0.50
    result = await client.call_tool("summarize", dearer)
    refused(result, f"payment request {request_id} covers $0.01, but this call costs $0.50")
    assert shop.runs == {} and await state_of(shop, request_id) is State.PAID
    cheap = await client.call_tool("summarize", {"words": "a b c", "payment_request_id": request_id})
    assert not cheap.is_error, text_of(cheap)


async def test_an_id_for_another_tool_is_refused(shop: Shop, client: Client) -> None:
    request_id, _ = link_of(await client.call_tool("summarize", {"words": "a b c"}))
    await pay(shop, request_id)
    result = await client.call_tool("answer", {"question": "q", "payment_request_id": request_id})
    refused(result, "is for tool 'summarize'")
    assert await state_of(shop, request_id) is State.PAID


async def test_a_failed_tool_keeps_the_paid_request_redeemable(shop: Shop, client: Client) -> None:
    before = shop.balances()
    request_id, _ = link_of(await client.call_tool("answer", {"question": "q"}))
    await pay(shop, request_id)
    shop.fail_next.append(True)
    failed = await client.call_tool("answer", {"question": "q"})
    assert failed.is_error and "answer engine is down" in text_of(failed)
    assert await state_of(shop, request_id) is State.PAID
    result = await client.call_tool("answer", {"question": "q"})
    assert not result.is_error, text_of(result)
    assert shop.runs == {"answer": 2}
    assert shop.balances() == (before[0] - PRICE, before[1] + PRICE)
    assert await state_of(shop, request_id) is State.CONSUMED

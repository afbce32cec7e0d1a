"""The FastMCP door answers as the MCPServer door does: prices in every listing (a response
cache inside the gate included), the MCP Apps payment card, and `capabilities.extensions`
for clients that connect with the classic `initialize` handshake.

Each test runs the same shop on both frameworks, through the MCP SDK's own client (over the
low-level server, in memory) and, for the raw handshake, over streamable HTTP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastmcp import FastMCP
from fastmcp.server.middleware.caching import ResponseCachingMiddleware
from mcp import Client
from mcp.client.extension import advertise
from mcp.server import MCPServer
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from mcp.types import TextContent

from tests.facilitator.serving import serving
from x402_mcp import Payments, paid
from x402_mcp.chains.devchain import DevChain
from x402_mcp.client.payer import sign_payment
from x402_mcp.core.challenge import (
    META_HOSTED_URL,
    META_PAYMENT,
    META_PAYMENT_RESPONSE,
    META_PRICE,
    META_REQUEST_ID,
    REQUEST_ID_ARGUMENT,
)
from x402_mcp.core.wire import PaymentRequired
from x402_mcp.frameworks import _fastmcp_seam as seam
from x402_mcp.frameworks.choice import FRAMEWORKS, paid_server
from x402_mcp.frameworks.handshake import IDENTIFIER
from x402_mcp.page.card import CARD_URI, META_CARD

pytestmark = pytest.mark.anyio

APPS = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})


def shop(payments: Payments, framework: str) -> MCPServer[Any] | FastMCP[Any]:
    """A free tool and a typed paid one (an `outputSchema` the card must take off)."""
    server = paid_server("parity-shop", payments, framework)

    @server.tool()
    def ping(word: str) -> str:
        return word

    @server.tool()
    @paid(price="0.05", description="one square")
    def square(n: int) -> int:
        return n * n

    return server


def lowlevel(server: MCPServer[Any] | FastMCP[Any]) -> Any:
    return server if isinstance(server, MCPServer) else seam.lowlevel_server(server)


@pytest.mark.parametrize("cache_added", ["before install", "after install"])
async def test_a_cached_fastmcp_listing_still_carries_prices_and_the_request_id(
    chain: DevChain, tmp_path: Path, cache_added: str
) -> None:
    payments = Payments(
        pay_to="0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
        network=chain.network,
        settlement=chain.settlement(),
        ledger=f"sqlite:///{tmp_path / 'ledger.sqlite'}",
    )
    server: FastMCP[Any] = FastMCP("cached")
    cache = ResponseCachingMiddleware()
    if cache_added == "before install":
        server.add_middleware(cache)

    @server.tool()
    @paid(price="0.05")
    def square(n: int) -> int:
        return n * n

    payments.install(server)
    if cache_added == "after install":
        server.add_middleware(cache)  # the README's advice: after payments.install(mcp)
    async with Client(seam.lowlevel_server(server)) as client:
        listings = [(await client.list_tools()).tools for _ in range(3)]
    stats = cache.statistics().list_tools
    assert stats is not None and stats.get.hit >= 2  # the later listings came from the cache
    for (tool,) in listings:
        assert (tool.meta or {})[META_PRICE]["amount"] == "50000"
        assert (tool.meta or {})["ui"] == {"resourceUri": CARD_URI}
        # Whoever paid on the page redeems with this argument; a strict client checks it here.
        assert REQUEST_ID_ARGUMENT in tool.input_schema["properties"]
        assert "$0.05" in (tool.description or "")


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_both_doors_offer_the_payment_card_to_apps_hosts_only(
    payments: Payments, framework: str
) -> None:
    server = shop(payments, framework)
    async with Client(lowlevel(server), extensions=[APPS]) as apps_host, Client(lowlevel(server)) as plain:
        listed = {tool.name: tool for tool in (await apps_host.list_tools()).tools}
        plain_listed = {tool.name: tool for tool in (await plain.list_tools()).tools}
        read = await apps_host.read_resource(CARD_URI)
        card = await apps_host.call_tool("square", {"n": 3})
        challenge = await plain.call_tool("square", {"n": 3})

    assert (listed["square"].meta or {})["ui"] == {"resourceUri": CARD_URI}
    assert "ui" not in (listed["ping"].meta or {})
    assert listed["square"].output_schema is None  # a non-error challenge could never match it
    assert plain_listed["square"].output_schema is not None
    assert (plain_listed["square"].meta or {})["ui"] == {"resourceUri": CARD_URI}
    (content,) = read.contents
    assert content.mime_type == APP_MIME_TYPE
    assert "<script src" not in getattr(content, "text", "")
    page_origin = str((card.meta or {})[META_HOSTED_URL]).split("/pay/")[0]
    assert (content.meta or {})["ui"]["csp"]["connectDomains"] == [page_origin]

    # The Apps host: not an error (so the card is mounted), the same words, the card's facts.
    assert not card.is_error and card.structured_content is None
    text = " ".join(block.text for block in card.content if isinstance(block, TextContent))
    assert "Payment required: $0.05" in text
    facts = (card.meta or {})[META_CARD]
    assert facts["price"] == "$0.05" and facts["tool"] == "square"
    assert facts["retryArguments"] == {REQUEST_ID_ARGUMENT: (card.meta or {})[META_REQUEST_ID]}
    # Every other client: the usual challenge.
    assert challenge.is_error and META_CARD not in (challenge.meta or {})
    assert challenge.structured_content is None


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_a_handshake_era_client_sees_the_payments_extension(payments: Payments, framework: str) -> None:
    server = shop(payments, framework)
    async with Client(lowlevel(server), mode="legacy") as client:
        extensions = client.server_capabilities.extensions if client.server_capabilities else None
    assert (extensions or {})[IDENTIFIER] == payments.settings()
    assert payments.settings()["payTo"] == "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_a_raw_initialize_over_http_sees_the_payments_extension(
    payments: Payments, framework: str
) -> None:
    server = shop(payments, framework)
    app = server.streamable_http_app() if isinstance(server, MCPServer) else server.http_app()
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"},
        },
    }
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    async with app.router.lifespan_context(app), serving(app) as base, httpx2.AsyncClient(timeout=10) as web:
        answer = await web.post(f"{base}/mcp", json=initialize, headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.text
    if body.lstrip().startswith("event:") or "data:" in body:
        body = next(line[5:] for line in body.splitlines() if line.startswith("data:"))
    result = httpx2.Response(200, content=body).json()["result"]
    assert result["protocolVersion"] == "2025-06-18"
    assert result["capabilities"]["extensions"][IDENTIFIER] == payments.settings()


async def test_a_paid_tool_of_a_mounted_server_is_priced_and_gated_by_the_parents_payments(
    payments: Payments, chain: DevChain
) -> None:
    runs: list[int] = []
    child: FastMCP[Any] = FastMCP("child")

    @child.tool()
    @paid(price="0.05")
    def square(n: int) -> int:
        runs.append(n)
        return n * n

    parent: FastMCP[Any] = FastMCP("parent")
    parent.mount(child, namespace="shop")
    payments.install(parent)
    parent.add_middleware(ResponseCachingMiddleware())
    payer = chain.new_account(usdc="1")
    async with Client(seam.lowlevel_server(parent)) as client:
        for _ in range(2):  # the second listing from the cache
            (tool,) = (await client.list_tools()).tools
            assert tool.name == "shop_square" and (tool.meta or {})[META_PRICE]["amount"] == "50000"
            assert REQUEST_ID_ARGUMENT in tool.input_schema["properties"]
        unpaid = await client.call_tool("shop_square", {"n": 4})
        assert unpaid.is_error and runs == []  # the proxy hides the function: it ran unpaid before
        required = PaymentRequired.model_validate_json(unpaid.content[0].text)  # type: ignore[union-attr]
        paid_result = await client.call_tool(
            "shop_square", {"n": 4}, meta={META_PAYMENT: sign_payment(payer, required).dump()}
        )
    assert not paid_result.is_error and runs == [4]
    assert (paid_result.meta or {})[META_PAYMENT_RESPONSE]["success"] is True

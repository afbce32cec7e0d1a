"""The FastMCP 4 door: `payments.install(mcp)`, driven by fastmcp's own `Client`.

The gate's behaviour (challenge, pay, replay, concurrency, redemption, bad input)
is covered on FastMCP by tests/gate, whose `shop` runs on both frameworks; here
are the things only this door has: its place in the middleware chain (the
caching trap), the extension it registers, the routes and lifespan it adds.
"""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from fastmcp import Client as FastMCPClient
from fastmcp import FastMCP
from fastmcp.server.middleware.caching import ResponseCachingMiddleware
from mcp import Client
from mcp.client.context import ClientRequestContext
from mcp.types import ElicitRequestParams, ElicitRequestURLParams, ElicitResult

from tests.facilitator.serving import serving
from x402_mcp import ConfigurationError, Payments, paid
from x402_mcp.chains.devchain import DevChain
from x402_mcp.client.payer import sign_payment
from x402_mcp.core.challenge import META_HOSTED_URL, META_PAYMENT, META_PAYMENT_RESPONSE, META_PRICE
from x402_mcp.core.wire import PaymentRequired
from x402_mcp.frameworks import _fastmcp_seam as seam
from x402_mcp.frameworks.fastmcp import IDENTIFIER, GateMiddleware

pytestmark = pytest.mark.anyio


class Shop:
    """A FastMCP server with a free tool, a paid one and a typed paid one, counting runs."""

    def __init__(self, payments: Payments) -> None:
        self.runs: dict[str, int] = {}
        self.server: FastMCP[Any] = FastMCP("fm-shop")
        server = self.server

        @server.tool()
        def ping(word: str) -> str:
            self.runs["ping"] = self.runs.get("ping", 0) + 1
            return word

        @server.tool()
        @paid(price="0.05", description="one answer")
        def answer(question: str) -> str:
            self.runs["answer"] = self.runs.get("answer", 0) + 1
            return f"answer to {question}"

        # The other order, and a typed result (FastMCP declares an outputSchema for it).
        @paid(price="0.01")
        @server.tool()
        def square(n: int) -> int:
            self.runs["square"] = self.runs.get("square", 0) + 1
            return n * n

        payments.install(server)


def challenge_of(result: Any) -> PaymentRequired:
    assert result.is_error
    return PaymentRequired.model_validate_json(result.content[0].text)


async def test_fastmcp_client_sees_prices_pays_in_meta_and_gets_a_receipt(
    payments: Payments, chain: DevChain
) -> None:
    shop = Shop(payments)
    payer = chain.new_account(usdc="1")
    async with FastMCPClient(shop.server) as client:
        listed = {tool.name: tool for tool in await client.list_tools()}
        for name in ("answer", "square"):  # @paid below and above @mcp.tool
            assert (listed[name].meta or {})[META_PRICE]["amount"] is not None
            assert "payment_request_id" in listed[name].input_schema["properties"]
        assert META_PRICE not in (listed["ping"].meta or {})
        assert "Paid tool: $0.05 per call" in (listed["answer"].description or "")

        unpaid = await client.call_tool("answer", {"question": "why"}, raise_on_error=False)
        required = challenge_of(unpaid)
        assert (unpaid.meta or {})[META_HOSTED_URL].startswith("http://127.0.0.1:")
        payment = sign_payment(payer, required)
        before = chain.balance_of(payer.address)
        result = await client.call_tool("answer", {"question": "why"}, meta={META_PAYMENT: payment.dump()})
        assert result.data == "answer to why"
        assert (result.meta or {})[META_PAYMENT_RESPONSE]["success"] is True
        assert chain.balance_of(payer.address) == before - 50_000

        replay = await client.call_tool(
            "answer", {"question": "why"}, meta={META_PAYMENT: payment.dump()}, raise_on_error=False
        )
        assert replay.is_error and "answer to why" not in replay.content[0].text
    assert shop.runs == {"answer": 1}


async def test_a_cache_added_after_install_sits_inside_the_gate_and_never_serves_the_unpaid(
    payments: Payments, chain: DevChain
) -> None:
    shop = Shop(payments)
    shop.server.add_middleware(ResponseCachingMiddleware())
    chain_order = seam.middleware_chain(shop.server)
    assert isinstance(chain_order[0], GateMiddleware)
    payer = chain.new_account(usdc="1")
    async with FastMCPClient(shop.server) as client:
        # The cache works: a free tool runs once for two calls.
        await client.call_tool("ping", {"word": "a"})
        await client.call_tool("ping", {"word": "a"})
        assert shop.runs == {"ping": 1}

        required = challenge_of(await client.call_tool("answer", {"question": "q"}, raise_on_error=False))
        paid_result = await client.call_tool(
            "answer", {"question": "q"}, meta={META_PAYMENT: sign_payment(payer, required).dump()}
        )
        assert paid_result.data == "answer to q"
        # The same name and arguments, unpaid: the cache holds the paid answer, the gate answers first.
        again = await client.call_tool("answer", {"question": "q"}, raise_on_error=False)
        fresh = challenge_of(again)
        assert fresh.accepts[0].extra["paymentRequestId"] != required.accepts[0].extra["paymentRequestId"]
    assert shop.runs == {"ping": 1, "answer": 1}


async def test_a_cache_put_in_front_of_the_gate_stops_the_server_from_starting(payments: Payments) -> None:
    shop = Shop(payments)
    seam.middleware_chain(shop.server).insert(0, ResponseCachingMiddleware())
    lowlevel = seam.lowlevel_server(shop.server)
    with pytest.raises(ConfigurationError) as refused:
        async with lowlevel.lifespan(lowlevel):
            pass
    message = str(refused.value)
    assert "ResponseCachingMiddleware runs before the x402 payments gate" in message
    assert "mcp.add_middleware" in message and "fm-shop" in message
    assert shop.runs == {}


async def test_a_typed_paid_tools_errors_carry_no_structured_content(payments: Payments) -> None:
    shop = Shop(payments)
    async with Client(seam.lowlevel_server(shop.server)) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert listed["square"].output_schema is not None
        challenge = await client.call_tool("square", {"n": 3})
    # Strict clients (the TypeScript SDK) validate structuredContent against outputSchema, errors too.
    assert challenge.is_error and challenge.structured_content is None
    assert challenge_of(challenge).accepts[0].amount == "10000"


async def test_the_extension_advertises_the_payee_and_network(payments: Payments) -> None:
    shop = Shop(payments)
    async with Client(seam.lowlevel_server(shop.server)) as client:
        extensions = client.server_capabilities.extensions if client.server_capabilities else None
    assert extensions is not None
    assert extensions[IDENTIFIER] == {
        "network": payments.network.caip2,
        "asset": payments.asset.address,
        "payTo": payments.pay_to,
    }


async def test_the_http_app_serves_the_page_beside_mcp_and_links_to_it(payments: Payments) -> None:
    shop = Shop(payments)
    app = shop.server.http_app()
    async with app.router.lifespan_context(app), serving(app) as base:
        async with FastMCPClient(f"{base}/mcp") as client:
            unpaid = await client.call_tool("answer", {"question": "q"}, raise_on_error=False)
        hosted = str((unpaid.meta or {})[META_HOSTED_URL])
        assert hosted.startswith(f"{base}/pay/pr_"), hosted
        async with httpx2.AsyncClient(timeout=10) as web:
            page = await web.get(hosted, headers={"Accept": "text/html"})
            missing = await web.get(f"{base}/pay/pr_nothing", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "$0.05" in page.text
    assert missing.status_code == 404


async def test_over_stdio_and_in_memory_the_page_comes_up_on_a_side_port(payments: Payments) -> None:
    shop = Shop(payments)
    async with FastMCPClient(shop.server) as client:
        unpaid = await client.call_tool("answer", {"question": "q"}, raise_on_error=False)
        hosted = str((unpaid.meta or {})[META_HOSTED_URL])
        assert hosted.startswith("http://127.0.0.1:") and "/pay/pr_" in hosted
        async with httpx2.AsyncClient(timeout=10) as web:
            page = await web.get(hosted, headers={"Accept": "text/html"})
        assert page.status_code == 200 and "$0.05" in page.text


async def test_install_refuses_what_it_cannot_serve(payments: Payments, chain: DevChain) -> None:
    with pytest.raises(ConfigurationError, match="cannot install Payments on object"):
        payments.install(object())
    first = Shop(payments)
    with pytest.raises(ConfigurationError, match=r"installed on .* already"):
        payments.install(FastMCP("second"))
    payments.install(first.server)  # the same server again: nothing changes
    assert sum(isinstance(m, GateMiddleware) for m in seam.middleware_chain(first.server)) == 1
    with pytest.raises(ConfigurationError, match="MCPServer"):
        payments.paid_tool("answer")  # the MCPServer door's synchronous lookup
    other = Payments(pay_to=payments.pay_to, network=chain.network, settlement=chain.settlement(),
                     ledger=payments.ledger)  # fmt: skip
    with pytest.raises(ConfigurationError, match="installed on this FastMCP server already"):
        other.install(first.server)
    seam.middleware_chain(first.server).clear()
    lowlevel = seam.lowlevel_server(first.server)
    with pytest.raises(ConfigurationError, match="was removed from the FastMCP middleware chain"):
        async with lowlevel.lifespan(lowlevel):
            pass


async def test_a_client_that_takes_url_elicitation_is_offered_the_link(payments: Payments) -> None:
    shop = Shop(payments)
    offered: list[ElicitRequestURLParams] = []

    async def person(context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        assert isinstance(params, ElicitRequestURLParams)
        offered.append(params)
        return ElicitResult(action="accept")

    async with Client(
        seam.lowlevel_server(shop.server), mode="legacy", elicitation_callback=person
    ) as client:
        challenge = await client.call_tool("answer", {"question": "q"})
    required = challenge_of(challenge)
    request_id = required.accepts[0].extra["paymentRequestId"]
    assert [(each.url, each.elicitation_id) for each in offered] == [
        ((challenge.meta or {})[META_HOSTED_URL], request_id)
    ]
    assert "Pay $0.05 for one answer" in offered[0].message


async def test_a_paid_server_mounted_under_a_caching_parent_refuses_paid_calls(
    payments: Payments, caplog: pytest.LogCaptureFixture
) -> None:
    shop = Shop(payments)
    parent: FastMCP[Any] = FastMCP("parent")
    parent.add_middleware(ResponseCachingMiddleware())  # runs before the child's gate, out of its reach
    parent.mount(shop.server, namespace="shop")
    async with FastMCPClient(parent) as client:
        first = await client.call_tool("shop_answer", {"question": "q"}, raise_on_error=False)
        second = await client.call_tool("shop_answer", {"question": "q"}, raise_on_error=False)
        free = await client.call_tool("shop_ping", {"word": "w"})
    for refused in (first, second):
        assert refused.is_error
        assert "its payments are installed on FastMCP server 'fm-shop'" in refused.content[0].text
        assert "Nothing was charged" in refused.content[0].text
    assert free.data == "w"
    assert shop.runs == {"ping": 1}
    assert "install Payments on the server you run" in caplog.text
    await payments.open()
    assert await payments.ledger.requests() == []  # nothing was quoted

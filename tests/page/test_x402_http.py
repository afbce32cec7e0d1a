"""The hosted URL as an x402 v2 HTTP resource, paid by the official `x402` httpx client."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import anyio
import pytest

from tests.npm import INSTALL_HINT, NODE_MODULES, missing
from tests.page.conftest import PRICE, Store, connected, http, link_of, text_of
from x402_mcp.core.states import State

pytestmark = pytest.mark.anyio
x402 = pytest.importorskip("x402", reason="the official x402 package is a test dependency")


def decode(header: str) -> dict[str, object]:
    value: dict[str, object] = json.loads(base64.b64decode(header))
    return value


async def test_machines_get_402_with_payment_required(store: Store) -> None:
    async with connected(store) as client, http() as web:
        request_id, url = link_of(await client.call_tool("answer", {"question": "q"}))
        response = await web.get(url, headers={"Accept": "application/json"})
    assert response.status_code == 402
    required = decode(response.headers["payment-required"])
    assert required["x402Version"] == 2
    accepts = required["accepts"]
    assert isinstance(accepts, list)
    assert accepts[0]["amount"] == str(PRICE) and accepts[0]["payTo"] == store.payee
    assert accepts[0]["extra"]["paymentRequestId"] == request_id
    assert response.json()["accepts"] == accepts


async def test_official_httpx_client_pays_the_hosted_url_unaided(store: Store) -> None:
    from x402 import x402Client
    from x402.http.clients import x402HttpxClient
    from x402.mechanisms.evm import EthAccountSigner
    from x402.mechanisms.evm.exact import ExactEvmClientScheme

    official = x402Client()
    official.register("eip155:*", ExactEvmClientScheme(EthAccountSigner(store.payer)))
    official.set_spend_controls(False)  # our dev-chain token is not in its table of known assets
    before = store.payee_balance()

    async with connected(store) as client:
        request_id, url = link_of(await client.call_tool("answer", {"question": "q"}))
        async with x402HttpxClient(official, timeout=10) as paying:
            response = await paying.get(url)
        assert response.status_code == 200, response.text
        settled = decode(response.headers["payment-response"])
        assert settled["success"] is True and settled["transaction"]
        assert store.payee_balance() == before + PRICE

        first = await client.call_tool("answer", {"question": "q"})
        second = await client.call_tool("answer", {"question": "q", "payment_request_id": request_id})

    assert not first.is_error, text_of(first)
    assert second.is_error and "already used" in text_of(second)
    assert store.runs == {"answer": 1}
    request = await store.ledger.get(request_id)
    assert request is not None and request.state is State.CONSUMED


async def test_a_malformed_payment_header_is_a_400(store: Store) -> None:
    async with connected(store) as client, http() as web:
        request_id, url = link_of(await client.call_tool("answer", {"question": "q"}))
        response = await web.get(url, headers={"PAYMENT-SIGNATURE": "bm90IGpzb24="})
    assert response.status_code == 400 and "payment" in response.json()["error"]
    request = await store.ledger.get(request_id)
    assert request is not None and request.state is State.ISSUED


PREFLIGHT = {
    "Origin": "http://localhost:5173",
    "Access-Control-Request-Method": "GET",
    "Access-Control-Request-Headers": "payment-signature,access-control-expose-headers",
}


async def test_the_x402_resource_is_open_to_browser_clients_on_any_origin(store: Store) -> None:
    async with connected(store) as client, http() as web:
        _, url = link_of(await client.call_tool("answer", {"question": "q"}))
        preflight = await web.options(url, headers=PREFLIGHT)
        required = await web.get(url, headers={"Origin": "http://localhost:5173"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    allowed = {name.strip().lower() for name in preflight.headers["access-control-allow-headers"].split(",")}
    assert {"payment-signature", "x-payment", "access-control-expose-headers"} <= allowed
    assert set(preflight.headers["access-control-allow-methods"].replace(" ", "").split(",")) == {
        "GET",
        "POST",
    }
    assert required.status_code == 402 and required.headers["access-control-allow-origin"] == "*"
    exposed = {name.strip().lower() for name in required.headers["access-control-expose-headers"].split(",")}
    assert {"payment-required", "payment-response"} <= exposed
    # The resource an x402 client fetches once it has paid is this URL, not the MCP tool.
    assert decode(required.headers["payment-required"])["resource"] == {
        "url": url,
        "description": required.json()["resource"]["description"],
        "mimeType": "application/json",
    }
    assert required.json()["resource"]["url"] == url


async def test_the_page_and_its_actions_stay_closed_to_other_origins(store: Store) -> None:
    async with connected(store) as client, http() as web:
        _, url = link_of(await client.call_tool("answer", {"question": "q"}))
        page = await web.get(url, headers={"Accept": "text/html", "Origin": "http://localhost:5173"})
        demo = await web.options(
            f"{url}/demo", headers={**PREFLIGHT, "Access-Control-Request-Method": "POST"}
        )
        prepare = await web.options(
            f"{url}/authorization", headers={**PREFLIGHT, "Access-Control-Request-Method": "POST"}
        )
    assert page.status_code == 200 and "access-control-allow-origin" not in page.headers
    for answer in (demo, prepare):
        assert answer.status_code == 405 and "access-control-allow-origin" not in answer.headers


async def test_a_payment_naming_another_request_is_refused_with_its_id_shown_safely(store: Store) -> None:
    from x402_mcp.client.payer import sign_payment
    from x402_mcp.core.wire import PaymentRequired, encode_header
    from x402_mcp.schemes.exact.evm import requirements_for

    async with connected(store) as client, http() as web:
        request_id, url = link_of(await client.call_tool("answer", {"question": "q"}))
        request = await store.ledger.get(request_id)
        assert request is not None
        requirements = requirements_for(request, store.payments.asset)
        hostile = "pr_\u202e" + "x" * 5_000
        forged = requirements.model_copy(
            update={"extra": {**requirements.extra, "paymentRequestId": hostile}}
        )
        payload = sign_payment(store.payer, PaymentRequired(accepts=[forged]))
        response = await web.get(url, headers={"PAYMENT-SIGNATURE": encode_header(payload)})
    error = response.json()["error"]
    assert response.status_code == 400 and f"not {request_id}" in error
    assert "\u202e" not in error and "\\u202e" in error and len(error) < 300
    assert response.headers["access-control-allow-origin"] == "*"
    after = await store.ledger.get(request_id)
    assert after is not None and after.state is State.ISSUED


def node_tools_or_skip() -> str:
    """`node`, when the pinned npm tools (tools/node_modules) are installed."""
    node = shutil.which("node")
    reason = None
    if node is None:
        reason = "node is not installed"
    elif not (NODE_MODULES / "@x402" / "fetch" / "package.json").is_file():
        reason = f"@x402/fetch is not in {NODE_MODULES}; {INSTALL_HINT}"
    if reason is None and node is not None:
        return node
    # CI installs tools/ for anvil; the same install brings the x402 clients.
    missing(str(reason), required_by="X402_REQUIRE_ANVIL")


async def test_official_x402_fetch_pays_the_hosted_url(store: Store) -> None:
    node = node_tools_or_skip()
    before = store.payee_balance()
    async with connected(store) as client:
        request_id, url = link_of(await client.call_tool("answer", {"question": "q"}))
        script = Path(__file__).with_name("x402_fetch_pay.mjs")
        key = "0x" + bytes(store.payer.key).hex()
        done = await anyio.run_process(
            [node, str(script), url, key, store.chain.usdc, str(PRICE)], check=False
        )
        assert done.returncode == 0, done.stderr.decode()
        answer = json.loads(done.stdout.decode().strip().splitlines()[-1])
        assert answer["status"] == 200, answer
        settled = answer["paymentResponse"]
        assert settled["success"] is True and settled["payer"] == store.payer.address
        assert settled["transaction"].startswith("0x") and settled["network"] == store.chain.network
        assert answer["body"]["paymentRequestId"] == request_id and answer["body"]["state"] == "paid"
        assert store.payee_balance() == before + PRICE
        result = await client.call_tool("answer", {"question": "q"})
    assert not result.is_error, text_of(result)
    paid = await store.ledger.get(request_id)
    assert paid is not None and paid.state is State.CONSUMED and paid.tx_hash == settled["transaction"]


@pytest.mark.parametrize("field", ["network", "scheme"])
async def test_a_refusal_quoting_the_payment_is_bounded_and_inert(store: Store, field: str) -> None:
    from x402_mcp.client.payer import sign_payment
    from x402_mcp.core.wire import PaymentRequired
    from x402_mcp.schemes.exact.evm import requirements_for

    async with connected(store) as client, http() as web:
        request_id, url = link_of(await client.call_tool("answer", {"question": "q"}))
        request = await store.ledger.get(request_id)
        assert request is not None
        payload = sign_payment(
            store.payer, PaymentRequired(accepts=[requirements_for(request, store.payments.asset)])
        )
        dumped = payload.dump()
        dumped["accepted"][field] = "\u202e" + "9" * 3_000
        header = base64.b64encode(json.dumps(dumped).encode()).decode()
        response = await web.get(url, headers={"PAYMENT-SIGNATURE": header})
    assert response.status_code in (400, 402), response.text
    error = response.json()["error"]
    assert "\u202e" not in error and len(error) < 500
    if "payment-required" in response.headers:
        assert decode(response.headers["payment-required"])["error"] == error
    after = await store.ledger.get(request_id)
    assert after is not None and after.state is State.ISSUED

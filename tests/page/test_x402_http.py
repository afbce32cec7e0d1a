"""The hosted URL as an x402 v2 HTTP resource, paid by the official `x402` httpx client."""

from __future__ import annotations

import base64
import json

import pytest

from tests.page.conftest import PRICE, Store, connected, http, link_of, text_of
from x402_mcp.lifecycle import State

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

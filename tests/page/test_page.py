"""The hosted page for people: states, escaping, headers, the wallet and demo-wallet flows."""

from __future__ import annotations

import contextlib
import html
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2
import pytest
from eth_account import Account
from mcp import Client

from tests.chains import AnvilChain
from tests.page.conftest import (
    PRICE,
    TRICKY,
    Store,
    build_store,
    connected,
    http,
    link_of,
    serving,
    text_of,
)
from x402_mcp.chains.devchain import DevChain
from x402_mcp.core.states import State
from x402_mcp.page.app import SECURITY_HEADERS

pytestmark = pytest.mark.anyio
HTML = {"Accept": "text/html,application/xhtml+xml"}


async def test_page_shows_the_request_escaped_with_strict_headers(store: Store) -> None:
    async with connected(store) as client, http() as web:
        request_id, url = link_of(await client.call_tool("answer", {"question": "q"}))
        response = await web.get(url, headers=HTML)

    assert response.status_code == 200
    page = response.text
    assert "$0.05" in page and "0.05 USDC" in page
    assert store.payee in page and request_id in page and "DevChain" in page
    assert "Waiting for your payment" in page
    assert TRICKY not in page and html.escape(TRICKY) in page
    data = re.search(r'<script type="application/json" id="request-data">(.*?)</script>', page, re.S)
    assert data is not None and "<" not in data.group(1)
    assert json.loads(data.group(1))["endpoints"]["demo"] is not None
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "default-src 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert "http" not in re.sub(r'href="[^"]*tx[^"]*"', "", page.split("<body>")[1]).split("request-data")[0]


async def test_static_assets_are_served_locally_and_nothing_else(store: Store) -> None:
    async with connected(store) as client, http() as web:
        _, url = link_of(await client.call_tool("answer", {"question": "q"}))
        base = url.split("/pay/")[0]
        script = await web.get(f"{base}/pay/_static/pay.js")
        style = await web.get(f"{base}/pay/_static/pay.css")
        other = await web.get(f"{base}/pay/_static/..%2Fapp.py")
    assert script.status_code == 200 and "eth_signTypedData_v4" in script.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert style.status_code == 200 and other.status_code == 404


async def test_wallet_signs_the_served_typed_data_and_the_next_call_runs(store: Store) -> None:
    before = store.payee_balance()
    async with connected(store) as client, http() as web:
        request_id, url = link_of(await client.call_tool("answer", {"question": "q"}))
        prepared = (await web.post(f"{url}/authorization", json={"from": store.payer.address})).json()
        typed = prepared["typedData"]
        assert typed["domain"]["verifyingContract"] == store.chain.usdc
        assert typed["message"]["value"] == str(PRICE) and typed["message"]["to"] == store.payee
        signed = Account.sign_typed_data(store.payer.key, full_message=typed)
        paid = await web.post(
            url, json={"authorization": prepared["authorization"], "signature": "0x" + signed.signature.hex()}
        )
        assert paid.status_code == 200, paid.text
        assert paid.json()["txHash"]
        page = (await web.get(url, headers=HTML)).text
        assert "Paid" in page and paid.json()["txHash"] in page

        result = await client.call_tool("answer", {"question": "q"})
    assert not result.is_error, text_of(result)
    assert store.payee_balance() == before + PRICE
    assert store.runs == {"answer": 1}
    request = await store.ledger.get(request_id)
    assert request is not None and request.state is State.CONSUMED


async def test_a_forged_signature_is_refused_and_the_request_stays_payable(store: Store) -> None:
    stranger = Account.create()
    async with connected(store) as client, http() as web:
        request_id, url = link_of(await client.call_tool("answer", {"question": "q"}))
        prepared = (await web.post(f"{url}/authorization", json={"from": store.payer.address})).json()
        forged = Account.sign_typed_data(stranger.key, full_message=prepared["typedData"])
        refused = await web.post(
            url, json={"authorization": prepared["authorization"], "signature": "0x" + forged.signature.hex()}
        )
    assert refused.status_code == 402 and "signature" in refused.json()["error"].lower()
    request = await store.ledger.get(request_id)
    assert request is not None and request.state is State.ISSUED


async def test_demo_wallet_pays_on_the_devchain(store: Store) -> None:
    before = store.payee_balance()
    async with connected(store) as client, http() as web:
        _, url = link_of(await client.call_tool("answer", {"question": "q"}))
        paid = await web.post(f"{url}/demo", json={})
        again = await web.post(f"{url}/demo", json={})
        result = await client.call_tool("answer", {"question": "q"})
    assert paid.status_code == 200, paid.text
    assert again.status_code == 409 and "paid" in again.json()["error"]
    assert not result.is_error and store.payee_balance() == before + PRICE


@pytest.mark.anvil
async def test_no_demo_wallet_without_the_devchain(anvil: AnvilChain, tmp_path: Path) -> None:
    store = build_store(anvil, tmp_path / "l.sqlite", demo=False, page_port=0)
    async with connected(store) as client, http() as web:
        _, url = link_of(await client.call_tool("answer", {"question": "q"}))
        page = (await web.get(url, headers=HTML)).text
        demo = await web.post(f"{url}/demo", json={})
    assert 'id="demo-pay" type="button" class="secondary" hidden' in page
    assert demo.status_code == 404
    # A local chain all the same, but the page claims no demo wallet it does not have.
    assert "local test chain" in page and "demo wallet pays" not in page


async def test_the_readme_snippet_on_a_devchain_gets_the_demo_wallet_it_is_told_of(
    page_chain: DevChain, tmp_path: Path
) -> None:
    # Payments(..., settlement=chain.settlement()), with no Payments.from_env(): a chain inside
    # this process, which no outside wallet can reach, so the demo wallet is the way to pay.
    store = build_store(page_chain, tmp_path / "l.sqlite", demo=False, page_port=0)
    assert store.payments.demo_chain is None
    before = store.payee_balance()
    async with connected(store) as client, http() as web:
        _, url = link_of(await client.call_tool("answer", {"question": "q"}))
        page = (await web.get(url, headers=HTML)).text
        paid = await web.post(f"{url}/demo", json={})
        result = await client.call_tool("answer", {"question": "q"})
    assert "The demo wallet pays with it at one click." in page
    assert 'id="demo-pay" type="button" class="secondary">' in page  # not hidden
    assert paid.status_code == 200, paid.text
    assert not result.is_error and store.payee_balance() == before + PRICE


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b"x" * 20_000, {}, 413, "too large"),
        (b"{not json", {}, 400, "not valid JSON"),
        (b"[1, 2]", {}, 400, "JSON object"),
        (b'{"authorization": {"from": "0x12"}, "signature": "0x00"}', {}, 400, "invalid"),
    ],
)
async def test_oversized_or_malformed_posts_get_a_clear_message(
    store: Store, body: bytes, headers: dict[str, str], status: int, message: str
) -> None:
    async with connected(store) as client, http() as web:
        request_id, url = link_of(await client.call_tool("answer", {"question": "q"}))
        response = await web.post(url, content=body, headers={"Content-Type": "application/json", **headers})
    assert response.status_code == status and message in response.json()["error"]
    request = await store.ledger.get(request_id)
    assert request is not None and request.state is State.ISSUED


async def test_unknown_or_malformed_ids_reveal_nothing(store: Store) -> None:
    async with connected(store) as client, http() as web:
        _, url = link_of(await client.call_tool("answer", {"question": "q"}))
        base = url.split("/pay/")[0]
        unknown = await web.get(f"{base}/pay/pr_{'A' * 24}", headers=HTML)
        odd = await web.get(f"{base}/pay/../../etc", headers=HTML)
        machine = await web.get(f"{base}/pay/pr_{'B' * 24}")
    assert unknown.status_code == 404 and "<h1>No such payment request</h1>" in unknown.text
    assert '<html lang="en">' in unknown.text and "/pay/_static/pay.css" in unknown.text
    assert odd.status_code == 404
    assert machine.status_code == 404 and machine.json() == {"error": "there is no such payment request"}


async def test_expired_and_already_used_states(store: Store) -> None:
    clock = [1_000.0]
    store.payments.clock = lambda: clock[0]
    async with connected(store) as client, http() as web:
        _, url = link_of(await client.call_tool("answer", {"question": "q"}))
        clock[0] += store.payments.max_timeout_seconds + 1
        expired = await web.get(url, headers=HTML)
        expired_machine = await web.get(url)
        refused = await web.post(f"{url}/demo", json={})
    assert "Expired" in expired.text and 'id="actions" class="actions" hidden' in expired.text
    assert expired_machine.status_code == 410
    assert refused.status_code == 409 and "expired" in refused.json()["error"]

    store.payments.clock = __import__("time").time
    async with connected(store) as client, http() as web:
        _, url = link_of(await client.call_tool("answer", {"question": "q"}))
        assert (await web.post(f"{url}/demo", json={})).status_code == 200
        assert not (await client.call_tool("answer", {"question": "q"})).is_error
        used = await web.get(url, headers=HTML)
    assert "Already used" in used.text and "hidden" not in used.text.split('id="receipt"')[1][:40]


@contextlib.asynccontextmanager
async def page_at(store: Store, where: str) -> AsyncIterator[tuple[str, str]]:
    """(base URL of the page, a fresh request's hosted URL) with the page on a side port
    (its own app, as `x402-mcp page` serves it) or mounted beside /mcp."""
    if where == "side":
        async with connected(store) as client:
            _, url = link_of(await client.call_tool("answer", {"question": "q"}))
            yield url.split("/pay/")[0], url
        return
    store.payments.public_url = None
    async with serving(store.server.streamable_http_app()) as base:
        async with Client(f"{base}/mcp", mode="legacy") as client:
            _, url = link_of(await client.call_tool("answer", {"question": "q"}))
        yield base, url


def assert_secured(response: httpx2.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (response.status_code, name)


@pytest.mark.parametrize("where", ["side", "mounted"])
async def test_every_answer_carries_the_security_headers(
    store: Store, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with page_at(store, where) as (base, url), http() as web:
        answers = {
            "page": await web.get(url, headers=HTML),
            "402": await web.get(url),
            "static": await web.get(f"{base}/pay/_static/pay.css"),
            "unknown path": await web.get(f"{base}/pay/a/b/c/d", headers=HTML),
            "unknown path, machine": await web.get(f"{base}/pay/a/b/c/d"),
            "bare /pay": await web.get(f"{base}/pay"),
            "405": await web.put(url),
            "405 on demo": await web.get(f"{url}/demo"),
        }

        async def broken(request_id: str) -> None:
            raise RuntimeError("a bug, not a ledger outage")

        monkeypatch.setattr(store.ledger, "get", broken)
        answers["500"] = await web.get(url)
    statuses = {name: response.status_code for name, response in answers.items()}
    assert statuses == {
        "page": 200,
        "402": 402,
        "static": 200,
        "unknown path": 404,
        "unknown path, machine": 404,
        "bare /pay": 404,
        "405": 405,
        "405 on demo": 405,
        "500": 500,
    }
    for response in answers.values():
        assert_secured(response)
    missing = answers["unknown path"].text
    assert '<html lang="en">' in missing and "<h1>Nothing here</h1>" in missing
    assert 'href="../../../../pay/_static/pay.css"' in missing and "call it again" in missing
    assert answers["unknown path, machine"].json() == {"error": "there is nothing at this address"}
    assert answers["405"].json()["error"].startswith("PUT is not allowed here")
    assert "POST" in answers["405 on demo"].headers["allow"]
    assert answers["500"].json()["error"].startswith("The payment could not be processed")
    assert "a bug" not in answers["500"].text


async def test_the_mounted_page_leaves_mcp_as_it_was(store: Store) -> None:
    async with page_at(store, "mounted") as (base, url), http() as web:
        async with Client(f"{base}/mcp", mode="legacy") as client:
            tools = await client.list_tools()
        probe = await web.get(f"{base}/mcp", headers={"Accept": "text/html"})
    assert [tool.name for tool in tools.tools] == ["answer"]
    assert url.startswith(f"{base}/pay/pr_")
    assert "content-security-policy" not in probe.headers  # /mcp answers as the SDK made it


CROSS_SITE = [
    ({"Content-Type": "application/x-www-form-urlencoded"}, 415, "Content-Type: application/json"),
    ({"Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site"}, 415, "as JSON"),
    ({"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403, "from another site"),
    # Another port on loopback is the same site but another origin.
    ({"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"}, 403, "from another site"),
    ({"Content-Type": "application/json", "Origin": "http://127.0.0.1:1"}, 403, "from another site"),
    ({"Content-Type": "application/json", "Origin": "null"}, 403, "from another site"),
]


@pytest.mark.parametrize(("headers", "status", "message"), CROSS_SITE)
@pytest.mark.parametrize("action", ["demo", "authorization", "pay"])
async def test_the_page_actions_refuse_other_sites(
    store: Store, action: str, headers: dict[str, str], status: int, message: str
) -> None:
    before = store.payee_balance()
    async with connected(store) as client, http() as web:
        request_id, url = link_of(await client.call_tool("answer", {"question": "q"}))
        target = url if action == "pay" else f"{url}/{action}"
        body = {"from": store.payer.address} if action == "authorization" else {}
        response = await web.post(target, content=json.dumps(body), headers=headers)
    assert response.status_code == status and message in response.json()["error"]
    assert store.payee_balance() == before
    request = await store.ledger.get(request_id)
    assert request is not None and request.state is State.ISSUED


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://elsewhere.example"},
        {"Origin": "ORIGIN"},
        {"Content-Type": "application/json; charset=utf-8"},
    ],
)
async def test_the_demo_wallet_pays_from_the_page_itself(store: Store, headers: dict[str, str]) -> None:
    before = store.payee_balance()
    async with connected(store) as client, http() as web:
        _, url = link_of(await client.call_tool("answer", {"question": "q"}))
        origin = url.split("/pay/")[0]
        sent = {
            "Content-Type": "application/json",
            **{k: v.replace("ORIGIN", origin) for k, v in headers.items()},
        }
        paid = await web.post(f"{url}/demo", content=b"{}", headers=sent)
    assert paid.status_code == 200, paid.text
    assert store.payee_balance() == before + PRICE


async def test_the_status_a_page_polls_carries_the_receipt_and_the_retry(store: Store) -> None:
    from x402_mcp.core.challenge import retry_sentence

    machine = {"Accept": "application/json"}
    async with connected(store) as client, http() as web:
        request_id, url = link_of(await client.call_tool("answer", {"question": "q"}))
        unpaid = await web.get(url, headers=machine)
        paid = (await web.post(f"{url}/demo", json={})).json()
        status = await web.get(url, headers=machine)
        assert not (await client.call_tool("answer", {"question": "q"})).is_error
        used = await web.get(url, headers=machine)
    request = await store.ledger.get(request_id)
    assert request is not None
    assert unpaid.status_code == 402
    receipt = paid["receipt"]
    assert receipt["amount"] == "$0.05" and receipt["tokens"] == "0.05 USDC"
    assert receipt["payer"] == request.payer and receipt["paidAt"] == request.paid_at
    assert receipt["txUrl"] is None  # the embedded chain has no explorer
    assert paid["next"] == retry_sentence(request)
    assert status.status_code == 200 and status.json()["state"] == "paid"
    assert status.json()["receipt"]["txHash"] == request.tx_hash
    assert used.status_code == 410 and used.json()["state"] == "consumed"
    assert "has run" in used.json()["detail"]


def test_on_base_sepolia_the_page_says_test_money_links_the_faucet_and_the_explorer() -> None:
    from x402_mcp.core.challenge import Offer
    from x402_mcp.core.networks import BASE_SEPOLIA
    from x402_mcp.ledger.base import PaymentRequest
    from x402_mcp.page.render import render_page

    assert BASE_SEPOLIA.usdc is not None
    tx = "0x" + "ab" * 32
    payer = Account.create().address
    request = PaymentRequest(
        id="pr_" + "A" * 24,
        tool="answer",
        price=PRICE,
        asset=BASE_SEPOLIA.usdc.address,
        network=BASE_SEPOLIA.caip2,
        pay_to=payer,
        caller=None,
        created_at=1_000.0,
        expires_at=1_600.0,
        max_timeout_seconds=600,
        state=State.PAID,
        tx_hash=tx,
        payer=payer,
        paid_at=1_100.0,
    )
    offer = Offer(BASE_SEPOLIA, BASE_SEPOLIA.usdc, payer, "https://shop.example")
    page = render_page(request, offer, server_name="shop", prefix="..", demo=False, now=1_200.0)
    assert "test money on Base Sepolia" in page and 'href="https://faucet.circle.com/"' in page
    assert f'href="https://sepolia.basescan.org/tx/{tx}"' in page
    assert "1970-01-01 00:18:20 UTC" in page  # paid_at, in the receipt
    # The caller had no identity: the page tells it to pass the id.
    assert "with payment_request_id=&quot;pr_" in page

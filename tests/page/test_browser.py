"""The payment page in real Chromium, paid with an injected EIP-1193 wallet.

The wallet extension is the one thing outside our reach, so it is a test
double: `window.ethereum` is injected before the page loads and forwards
`eth_signTypedData_v4` to a Python-side test key, which signs exactly the JSON
the page passes (as MetaMask would).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from tests.page.conftest import PRICE, Store, connected, link_of, text_of
from x402_mcp.core.states import State

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

WALLET = """
(() => {
  const calls = [];
  window.__walletCalls = calls;
  window.ethereum = {
    isMetaMask: true,
    chainId: "0x1",
    async request({ method, params }) {
      calls.push(method);
      switch (method) {
        case "eth_requestAccounts":
        case "eth_accounts":
          return [ADDRESS];
        case "eth_chainId":
          return this.chainId;
        case "wallet_switchEthereumChain":
          this.chainId = params[0].chainId;
          return null;
        case "eth_signTypedData_v4":
          if (params[0].toLowerCase() !== ADDRESS.toLowerCase()) throw new Error("unknown account");
          return await window.__walletSign(params[1]);
        default:
          throw Object.assign(new Error("unsupported " + method), { code: 4200 });
      }
    },
  };
})();
"""


def chromium_or_skip() -> Path:
    reason = None
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        reason = "the playwright package is not installed"
    if reason is None and not CHROMIUM.is_file():
        reason = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if reason is None:
        return CHROMIUM
    if os.environ.get("X402_REQUIRE_BROWSER") == "1":
        pytest.fail(f"X402_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@contextlib.asynccontextmanager
async def browser_page(store: Store) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    executable = chromium_or_skip()
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=str(executable), args=LAUNCH_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 720, "height": 900})
            await context.expose_function(
                "__walletSign",
                lambda typed: (
                    "0x"
                    + Account.sign_typed_data(store.payer.key, full_message=json.loads(typed)).signature.hex()
                ),
            )
            await context.add_init_script(WALLET.replace("ADDRESS", json.dumps(store.payer.address)))
            yield await context.new_page()
        finally:
            await browser.close()


async def test_a_person_pays_in_the_browser_and_the_tool_runs(store: Store) -> None:
    before = store.payee_balance()
    async with connected(store) as client, browser_page(store) as page:
        unpaid = await client.call_tool("answer", {"question": "what is x402?"})
        request_id, url = link_of(unpaid)

        await page.goto(url)
        assert await page.locator("#status-text").text_content() == "Waiting for your payment"
        await page.click("#pay")
        await page.wait_for_selector("main[data-state='paid']", timeout=15_000)

        tx_hash = await page.locator("#tx-link").text_content()
        assert tx_hash and tx_hash.startswith("0x")
        calls = await page.evaluate("window.__walletCalls")
        assert calls[:1] == ["eth_requestAccounts"] and "wallet_switchEthereumChain" in calls
        assert "eth_signTypedData_v4" in calls
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "payment-page-paid.png"), full_page=True)

        result = await client.call_tool("answer", {"question": "what is x402?"})

        await page.reload()
        assert await page.locator("#status-text").text_content() == "Already used"

    assert not result.is_error, text_of(result)
    assert text_of(result) == "answer to what is x402?"
    assert store.payee_balance() == before + PRICE
    request = await store.ledger.get(request_id)
    assert request is not None and request.tx_hash == tx_hash


async def test_the_page_counts_down_to_expired(store: Store) -> None:
    # Issued so that it expires about 8 seconds from now, by the wall clock the browser reads.
    clock = [time.time() - store.payments.max_timeout_seconds + 8]
    store.payments.clock = lambda: clock[0]
    async with connected(store) as client, browser_page(store) as page:
        _, url = link_of(await client.call_tool("answer", {"question": "q"}))
        await page.goto(url)
        assert await page.locator("#status-text").text_content() == "Waiting for your payment"
        assert (await page.locator("#countdown").text_content() or "").startswith("in 0:0")
        # At zero the page asks the server, which alone decides (it may have been paid just in time).
        await page.locator("#countdown", has_text="now").wait_for(timeout=15_000)
        assert await page.locator("main").get_attribute("data-state") == "issued"
        clock[0] += store.payments.max_timeout_seconds
        await page.wait_for_selector("main[data-state='expired']", timeout=15_000)
        assert await page.locator("#actions").is_hidden()
        await page.reload()
        assert await page.locator("#status-text").text_content() == "Expired"
    assert store.runs == {}


async def test_without_a_wallet_the_page_says_so(store: Store) -> None:
    from playwright.async_api import async_playwright

    executable = chromium_or_skip()
    async with connected(store) as client, async_playwright() as driver:
        _, url = link_of(await client.call_tool("answer", {"question": "q"}))
        browser = await driver.chromium.launch(executable_path=str(executable), args=LAUNCH_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(url)
            await page.click("#pay")
            assert await page.locator("#status-text").text_content() == "No browser wallet found"
        finally:
            await browser.close()


ELSEWHERE = (
    "<!doctype html><html lang='en'><title>Another site</title><p>Another origin on loopback.</p></html>"
)

CROSS_ORIGIN_PAY = """
async (url) => {
  const first = await fetch(url);
  const required = first.headers.get("PAYMENT-REQUIRED");
  const signature = await window.__payerSign(required);
  const second = await fetch(url, { headers: { "PAYMENT-SIGNATURE": signature } });
  return {
    firstStatus: first.status,
    required,
    secondStatus: second.status,
    paymentResponse: second.headers.get("PAYMENT-RESPONSE"),
    body: await second.json(),
  };
}
"""

CROSS_ORIGIN_DEMO = """
async (url) => {
  try {
    const answer = await fetch(url + "/demo", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: "{}",
    });
    return "answered " + answer.status;
  } catch (error) {
    return "blocked: " + error.name;
  }
}
"""


async def test_a_site_on_another_origin_pays_with_x402_but_cannot_press_the_demo_wallet(store: Store) -> None:
    from playwright.async_api import async_playwright
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from tests.page.conftest import serving
    from x402_mcp.client.payer import read_challenge, sign_payment
    from x402_mcp.core.wire import decode_header, encode_header

    async def elsewhere(request: Any) -> HTMLResponse:
        return HTMLResponse(ELSEWHERE)

    def payer_sign(required_header: str) -> str:
        return encode_header(sign_payment(store.payer, read_challenge(decode_header(required_header))))

    executable = chromium_or_skip()
    before = store.payee_balance()
    other_site = Starlette(routes=[Route("/", elsewhere)])
    async with (
        connected(store) as client,
        serving(other_site) as other_origin,
        async_playwright() as driver,
    ):
        request_id, url = link_of(await client.call_tool("answer", {"question": "q"}))
        assert not url.startswith(other_origin)  # another port: another origin, the same site
        browser = await driver.chromium.launch(executable_path=str(executable), args=LAUNCH_ARGS)
        try:
            context = await browser.new_context()
            await context.expose_function("__payerSign", payer_sign)
            page = await context.new_page()
            await page.goto(other_origin)

            # The demo wallet: a JSON fetch needs a preflight the route never grants...
            assert await page.evaluate(CROSS_ORIGIN_DEMO, url) == "blocked: TypeError"
            # ...and a plain cross-site form (the classic CSRF) is refused by the server.
            await page.evaluate(
                """(url) => {
                  const form = document.createElement("form");
                  form.method = "POST"; form.action = url + "/demo";
                  document.body.appendChild(form); form.submit();
                }""",
                url,
            )
            await page.wait_for_url(f"{url}/demo")
            assert "Content-Type: application/json" in (await page.text_content("body") or "")
            unpaid = await store.ledger.get(request_id)
            assert unpaid is not None and unpaid.state is State.ISSUED
            assert store.payee_balance() == before

            # The x402 resource: PAYMENT-REQUIRED readable, PAYMENT-SIGNATURE sent, PAYMENT-RESPONSE read.
            await page.goto(other_origin)
            outcome = await page.evaluate(CROSS_ORIGIN_PAY, url)
        finally:
            await browser.close()

    assert outcome["firstStatus"] == 402 and outcome["required"]
    assert decode_header(outcome["required"])["resource"]["url"] == url
    assert outcome["secondStatus"] == 200, outcome["body"]
    settled = decode_header(outcome["paymentResponse"])
    assert settled["success"] is True and settled["payer"] == store.payer.address
    assert store.payee_balance() == before + PRICE
    paid = await store.ledger.get(request_id)
    assert paid is not None and paid.state is State.PAID and paid.tx_hash == settled["transaction"]


async def test_the_not_found_page_is_styled_and_says_what_to_do(store: Store) -> None:
    async with connected(store) as client, browser_page(store) as page:
        _, url = link_of(await client.call_tool("answer", {"question": "q"}))
        missing = url.split("/pay/")[0] + "/pay/pr_" + "Z" * 24
        response = await page.goto(missing)
        assert response is not None and response.status == 404
        assert await page.locator("h1").text_content() == "No such payment request"
        assert await page.get_attribute("html", "lang") == "en"
        # The stylesheet applied (the card's rounded border), despite the strict CSP.
        radius = await page.evaluate("getComputedStyle(document.querySelector('main')).borderTopLeftRadius")
        assert radius == "16px"
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "payment-page-not-found.png"), full_page=True)


async def test_the_page_works_under_a_path_prefix(store: Store) -> None:
    """As behind a proxy that serves it at https://host/shop/ (X402_PUBLIC_URL with a path)."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from tests.page.conftest import serving
    from x402_mcp.page.serving import page_app

    before = store.payee_balance()
    async with serving(Starlette(routes=[Mount("/shop", app=page_app(store.payments))])) as base:
        store.payments.public_url = f"{base}/shop"
        async with connected(store) as client, browser_page(store) as page:
            _, url = link_of(await client.call_tool("answer", {"question": "q"}))
            assert url.startswith(f"{base}/shop/pay/pr_")
            await page.goto(url)
            radius = await page.evaluate(
                "getComputedStyle(document.querySelector('main')).borderTopLeftRadius"
            )
            assert radius == "16px"  # the stylesheet, found under the prefix
            await page.click("#demo-pay")
            await page.wait_for_selector("main[data-state='paid']", timeout=15_000)
            result = await client.call_tool("answer", {"question": "q"})
    assert not result.is_error, text_of(result)
    assert store.payee_balance() == before + PRICE

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
        assert await page.locator("#status-title").text_content() == "Awaiting payment"
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
        assert await page.locator("#status-title").text_content() == "Already used"

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
        assert await page.locator("#status-title").text_content() == "Awaiting payment"
        assert (await page.locator("#countdown").text_content() or "").startswith("in 0:0")
        await page.wait_for_selector("main[data-state='expired']", timeout=15_000)
        assert await page.locator("#actions").is_hidden()
        clock[0] += store.payments.max_timeout_seconds
        await page.reload()
        assert await page.locator("#status-title").text_content() == "Expired"
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
            assert await page.locator("#status-title").text_content() == "No browser wallet found"
        finally:
            await browser.close()

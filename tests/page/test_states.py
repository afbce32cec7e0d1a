"""Every state of the payment page, as a payer sees it, in real Chromium.

Each state is reached the way a payer reaches it (a wallet that declines, an
account without USDC, a payment made elsewhere, the network going away...) and
is then checked for what it says, for axe-core's WCAG 2.2 AA rules in the light
and the dark scheme, and photographed into test-artifacts/ for a person to look at.

The wallet extension is the one test double (as in test_browser.py): an
EIP-1193 provider injected before the page loads, announced over EIP-6963,
whose behaviour each test picks; it signs with a Python-side key and reads
balances from the real DevChain.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from tests.npm import npm_path_or_skip
from tests.page.conftest import PRICE, Store, connected, http, link_of, text_of
from tests.page.test_browser import ARTIFACTS, LAUNCH_ARGS, chromium_or_skip
from x402_mcp.core.states import State

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

AXE = "axe-core/axe.min.js"
AXE_RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]

WALLET = """
(() => {
  const plan = PLAN;
  const ICON = "data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg'/>";
  const calls = [];
  window.__walletCalls = calls;
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  window.__openGate = () => release();
  function wallet(name) {
    return {
      chainId: "0x1",
      async request({ method, params }) {
        calls.push(name + ":" + method);
        switch (method) {
          case "eth_requestAccounts":
            if (plan.hold) await gate;
            return [plan.account];
          case "eth_accounts":
            return [plan.account];
          case "eth_chainId":
            return this.chainId;
          case "wallet_switchEthereumChain":
            if (plan.unknownChain) {
              const unknown = 'Unrecognized chain ID "' + params[0].chainId + '".';
              throw Object.assign(new Error(unknown), { code: 4902 });
            }
            this.chainId = params[0].chainId;
            return null;
          case "eth_call":
            return await window.__walletBalance(params[0].to, params[0].data);
          case "eth_signTypedData_v4":
            if (plan.reject) {
              const denied = "MetaMask Tx Signature: User denied message signature.";
              throw Object.assign(new Error(denied), { code: 4001 });
            }
            if (plan.longError) throw Object.assign(new Error(plan.longError), { code: -32603 });
            return await window.__walletSign(params[1]);
          default:
            throw Object.assign(new Error("unsupported " + method), { code: 4200 });
        }
      },
    };
  }
  const announced = plan.wallets.map((name, index) => ({
    info: { uuid: "wallet-" + index, name, icon: ICON, rdns: "test." + index },
    provider: wallet(name),
  }));
  const announce = () => announced.forEach((detail) =>
    window.dispatchEvent(new CustomEvent("eip6963:announceProvider", { detail: Object.freeze(detail) })));
  window.addEventListener("eip6963:requestProvider", announce);
  if (plan.injected) window.ethereum = wallet("injected");
})();
"""


@pytest.fixture(scope="module")
def chromium_endpoint() -> Iterator[str]:
    """One Chromium for the whole module; each test opens its own context over CDP."""
    executable = chromium_or_skip()
    # Every state is checked with axe-core: without it, skip before any browser work.
    npm_path_or_skip(AXE, required_by="X402_REQUIRE_BROWSER")
    with tempfile.TemporaryDirectory() as profile:
        process = subprocess.Popen(
            [str(executable), *LAUNCH_ARGS, "--remote-debugging-port=0", f"--user-data-dir={profile}"],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stderr is not None
            for line in process.stderr:
                found = re.search(r"DevTools listening on (ws://\S+)", line)
                if found:
                    yield found.group(1)
                    break
            else:
                pytest.fail("Chromium did not open its DevTools endpoint")
        finally:
            process.terminate()
            process.wait(timeout=10)


def plan(account: LocalAccount, **changes: Any) -> dict[str, Any]:
    return {"account": account.address, "wallets": [], "injected": True, **changes}


@contextlib.asynccontextmanager
async def payer_page(
    endpoint: str,
    store: Store,
    wallet: dict[str, Any],
    *,
    width: int = 720,
    signer: LocalAccount | None = None,
) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    key = (signer or store.payer).key

    def balance(token: str, call: str) -> str:
        assert token.lower() == store.chain.usdc.lower() and call.startswith("0x70a08231")
        return hex(store.chain.balance_of("0x" + call[-40:]))

    async with async_playwright() as driver:
        browser = await driver.chromium.connect_over_cdp(endpoint)
        context = await browser.new_context(viewport={"width": width, "height": 900})
        try:
            await context.expose_function(
                "__walletSign",
                lambda typed: (
                    "0x" + Account.sign_typed_data(key, full_message=json.loads(typed)).signature.hex()
                ),
            )
            await context.expose_function("__walletBalance", balance)
            await context.add_init_script(WALLET.replace("PLAN", json.dumps(wallet)))
            yield await context.new_page()
        finally:
            await context.close()


async def status(page: Any) -> tuple[str, str, str]:
    """(state, title, everything the status says)."""
    state = await page.locator("main").get_attribute("data-state")
    title = await page.locator("#status-text").text_content()
    said = await page.locator("#status").inner_text()
    return state, title, said


async def reach(page: Any, state: str) -> None:
    await page.wait_for_selector(f"main[data-state='{state}']", timeout=15_000)


async def axe_violations(target: Any) -> list[str]:
    """axe-core's WCAG 2.2 AA findings in a page or frame (injected by the driver, so CSP stays strict)."""
    if not await target.evaluate("() => typeof axe !== 'undefined'"):
        axe = npm_path_or_skip(AXE, required_by="X402_REQUIRE_BROWSER")
        await target.evaluate(axe.read_text(encoding="utf-8"))
    found: list[str] = await target.evaluate(
        "(tags) => axe.run(document, { runOnly: { type: 'tag', values: tags } }).then((r) =>"
        " r.violations.map((v) => v.id + ': ' + v.nodes.map((n) => n.target.join(' ')).join(', ')))",
        AXE_RULES,
    )
    return found


async def looked_at(page: Any, name: str) -> None:
    """axe-core finds nothing in either colour scheme; both are photographed."""
    for scheme in ("light", "dark"):
        await page.emulate_media(color_scheme=scheme)
        await page.evaluate("() => document.querySelectorAll('details').forEach((d) => { d.open = true; })")
        found = await axe_violations(page)
        assert found == [], f"{name} ({scheme}): {found}"
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / f"page-{name}-{scheme}.png"), full_page=True)
        await page.evaluate("() => document.querySelectorAll('details').forEach((d) => { d.open = false; })")
    await page.emulate_media(color_scheme="light")


async def test_fresh_connecting_paid_here_and_already_used(chromium_endpoint: str, store: Store) -> None:
    before = store.payee_balance()
    async with (
        connected(store) as client,
        payer_page(chromium_endpoint, store, plan(store.payer, hold=True)) as page,
    ):
        request_id, url = link_of(await client.call_tool("answer", {"question": "q"}))
        await page.goto(url)
        state, title, said = await status(page)
        assert (state, title) == ("issued", "Waiting for your payment")
        assert "Nothing has been charged yet" in said
        assert "local test chain" in await page.locator(".note").inner_text()
        assert await page.title() == "Waiting for your payment · $0.05 for answer"
        assert "answer again" in (await page.locator("#footer").text_content() or "")
        await looked_at(page, "fresh")

        await page.click("#pay")
        await reach(page, "connecting")
        assert "wallet's window" in (await status(page))[2]
        await looked_at(page, "connecting")
        await page.evaluate("() => window.__openGate()")

        await reach(page, "paid")
        state, title, said = await status(page)
        assert title == "Paid" and "$0.05 was paid" in said
        assert "Now call answer again" in said
        assert await page.evaluate("() => document.activeElement.id") == "status-title"
        assert await page.title() == "Paid · $0.05 for answer"
        assert await page.locator("#receipt-amount").text_content() == "0.05 USDC"
        assert await page.locator("#receipt-payer").text_content() == store.payer.address
        assert await page.locator("#receipt-time").text_content()
        tx = page.locator("#tx-link")
        # The embedded chain has no explorer: the hash is shown, never an empty link.
        assert (
            await tx.evaluate("(node) => node.tagName") == "SPAN" and await tx.get_attribute("href") is None
        )
        assert await page.locator("#balance").text_content() == "10.00 USDC"
        steps = await page.locator("#progress").inner_text()
        assert "✓" in steps and "(done)" in steps  # told by icon and text, not colour alone
        await looked_at(page, "paid")

        await page.reload()
        assert (await status(page))[:2] == ("paid", "Paid")
        assert await page.locator("#tx-link").get_attribute("href") is None
        assert await page.locator("#receipt-payer").text_content() == store.payer.address

        result = await client.call_tool("answer", {"question": "q"})
        assert not result.is_error, text_of(result)
        await page.evaluate("() => window.dispatchEvent(new Event('focus'))")  # the payer comes back
        await reach(page, "consumed")
        state, title, said = await status(page)
        assert title == "Already used" and "has run" in said and "new payment link" in said
        assert "close this page" in (await page.locator("#footer").text_content() or "")
        await looked_at(page, "already-used")
    assert store.payee_balance() == before + PRICE
    request = await store.ledger.get(request_id)
    assert request is not None and request.payer == store.payer.address


async def test_paid_elsewhere_moves_the_open_page_without_a_reload(
    chromium_endpoint: str, store: Store
) -> None:
    async with (
        connected(store) as client,
        payer_page(chromium_endpoint, store, plan(store.payer)) as page,
        http() as web,
    ):
        _, url = link_of(await client.call_tool("answer", {"question": "q"}))
        await page.goto(url)
        paid = await web.post(f"{url}/demo", json={})  # as from another tab
        assert paid.status_code == 200
        await reach(page, "paid-elsewhere")
        _state, title, said = await status(page)
        assert title == "Already paid" and "Nothing more will be charged" in said
        assert await page.locator("#actions").is_hidden()
        assert await page.locator("#tx-link").text_content() == paid.json()["txHash"]
        await looked_at(page, "paid-elsewhere")


async def test_declined_wrong_chain_and_a_long_wallet_error_are_told_plainly(
    chromium_endpoint: str, store: Store
) -> None:
    async with connected(store) as client:
        _, url = link_of(await client.call_tool("answer", {"question": "q"}))
        async with payer_page(chromium_endpoint, store, plan(store.payer, reject=True)) as page:
            await page.goto(url)
            await page.click("#pay")
            await reach(page, "rejected")
            _state, title, said = await status(page)
            assert title == "You cancelled in your wallet" and "Nothing has been charged" in said
            assert "Press Pay to try again" in said and "MetaMask" not in said
            assert "User denied" in (await page.locator("#error-detail").text_content() or "")
            assert await page.locator("#pay").is_visible()
            assert await page.evaluate("() => document.activeElement.id") == "status-title"
            await looked_at(page, "rejected")

        async with payer_page(chromium_endpoint, store, plan(store.payer, unknownChain=True)) as page:
            await page.goto(url)
            await page.click("#pay")
            await reach(page, "wrong-chain")
            said = (await status(page))[2]
            assert "Switch your wallet to DevChain" in said and "0x" not in said
            await looked_at(page, "wrong-chain")

        long_error = "execution reverted: " + "0xdeadbeef" * 60
        for width in (320, 390):
            wallet = plan(store.payer, longError=long_error)
            async with payer_page(chromium_endpoint, store, wallet, width=width) as page:
                await page.goto(url)
                await page.click("#pay")
                await reach(page, "wallet-error")
                assert "internal error" in (await status(page))[2]
                await page.click("summary")
                wide = await page.evaluate("() => document.documentElement.scrollWidth")
                assert wide <= width, f"the page is {wide} px wide in a {width} px viewport"
                await page.screenshot(
                    path=str(ARTIFACTS / f"page-wallet-error-{width}px.png"), full_page=True
                )
    assert store.runs == {}


async def test_an_account_short_of_usdc_is_stopped_before_signing(
    chromium_endpoint: str, store: Store
) -> None:
    poor = Account.create()
    async with (
        connected(store) as client,
        payer_page(chromium_endpoint, store, plan(poor), signer=poor) as page,
    ):
        request_id, url = link_of(await client.call_tool("answer", {"question": "q"}))
        await page.goto(url)
        await page.click("#pay")
        await reach(page, "short")
        _state, title, said = await status(page)
        assert title == "Not enough USDC" and "holds 0.00 USDC" in said and "costs $0.05" in said
        assert await page.locator("#account").text_content() == poor.address
        calls = await page.evaluate("() => window.__walletCalls")
        assert "injected:eth_call" in calls and "injected:eth_signTypedData_v4" not in calls
        await looked_at(page, "short")
    request = await store.ledger.get(request_id)
    assert request is not None and request.state is State.ISSUED


async def test_the_payer_chooses_among_announced_wallets(chromium_endpoint: str, store: Store) -> None:
    wallet = plan(store.payer, wallets=["Alpha Wallet", "Beta Wallet"], injected=False)
    async with connected(store) as client, payer_page(chromium_endpoint, store, wallet) as page:
        _, url = link_of(await client.call_tool("answer", {"question": "q"}))
        await page.goto(url)
        choices = page.locator("#wallet-list label")
        assert await choices.all_inner_texts() == ["Alpha Wallet", "Beta Wallet"]
        await looked_at(page, "wallet-choice")
        await page.get_by_label("Beta Wallet").check()
        await page.click("#pay")
        await reach(page, "paid")
        calls = await page.evaluate("() => window.__walletCalls")
    assert "Beta Wallet:eth_signTypedData_v4" in calls
    assert not any(call.startswith("Alpha Wallet:eth_request") for call in calls)


async def test_settling_unreachable_expired_and_gone(chromium_endpoint: str, store: Store) -> None:
    async with connected(store) as client, payer_page(chromium_endpoint, store, plan(store.payer)) as page:
        _, url = link_of(await client.call_tool("answer", {"question": "q"}))
        await page.goto(url)

        # Settling: hold the wallet's payment on its way to the server for a moment.
        released = anyio.Event()

        async def held(route: Any) -> None:
            if route.request.method == "POST":
                await released.wait()
            await route.continue_()

        await page.route(url, held)
        await page.click("#pay")
        await reach(page, "settling")
        assert "Keep this page open" in (await status(page))[2]
        await looked_at(page, "settling")
        released.set()
        await reach(page, "paid")
        await page.unroute(url)

        # Unreachable: the network goes away, then comes back.
        assert not (await client.call_tool("answer", {"question": "q"})).is_error  # redeems the first
        _, second = link_of(await client.call_tool("answer", {"question": "another"}))
        await page.goto(second)
        await page.context.set_offline(True)
        await page.evaluate("() => window.dispatchEvent(new Event('focus'))")
        await reach(page, "unreachable")
        said = (await status(page))[2]
        assert "Can't reach the server" in said and "never charged twice" in said
        await looked_at(page, "unreachable")
        await page.context.set_offline(False)
        await page.evaluate("() => window.dispatchEvent(new Event('focus'))")
        await reach(page, "issued")

        # Expired, told live by the server; then the request is purged: gone.
        store.payments.clock = lambda: 4_000_000_000.0
        await page.evaluate("() => window.dispatchEvent(new Event('focus'))")
        await reach(page, "expired")
        _state, title, said = await status(page)
        assert title == "Expired" and "Nothing has been charged" in said and "new link" in said
        assert await page.locator("#actions").is_hidden()
        await looked_at(page, "expired")

        # Gone: the server no longer knows the request (its ledger was reset or purged).
        store.payments.clock = time.time
        await page.reload()
        assert (await status(page))[0] == "issued"
        await store.ledger.expire_overdue(now=4_000_000_000.0)
        await store.ledger.purge_expired(before=4_000_000_001.0)
        await page.evaluate("() => window.dispatchEvent(new Event('focus'))")
        await reach(page, "unknown")
        assert "gone" in (await status(page))[1]
        await looked_at(page, "gone")

        missing = await page.goto(url.split("/pay/")[0] + "/pay/pr_" + "Z" * 24)
        assert missing is not None and missing.status == 404
        await looked_at(page, "not-found")


async def test_noscript_and_testnet_wording(store: Store) -> None:
    """Without JavaScript the page says what to do; a testnet says "test money" with a faucet."""
    from x402_mcp.core.networks import BASE, BASE_SEPOLIA
    from x402_mcp.page.render import money_note

    async with connected(store) as client, http() as web:
        _, url = link_of(await client.call_tool("answer", {"question": "q"}))
        page = (await web.get(url, headers={"Accept": "text/html"})).text
    assert "<noscript>" in page and "needs JavaScript" in page
    assert 'href=""' not in page
    sepolia, faucet = money_note(BASE_SEPOLIA, demo=False)
    assert "test money" in sepolia and faucet == "https://faucet.circle.com/"
    mainnet, none = money_note(BASE, demo=False)
    assert none is None and "1 USDC is always worth 1 US dollar" in mainnet


async def test_a_refused_payment_and_no_wallet_are_told_plainly(chromium_endpoint: str, store: Store) -> None:
    stranger = Account.create()  # signs for an account it does not hold: the server refuses it
    async with connected(store) as client:
        request_id, url = link_of(await client.call_tool("answer", {"question": "q"}))
        async with payer_page(chromium_endpoint, store, plan(store.payer), signer=stranger) as page:
            await page.goto(url)
            await page.click("#pay")
            await reach(page, "refused")
            _, title, said = await status(page)
            assert title == "The payment was not accepted" and "Nothing has been charged" in said
            assert "signature did not match" in said and "Press Pay to try again" in said
            assert await page.locator("#pay").is_visible()
            await looked_at(page, "refused")

        async with payer_page(chromium_endpoint, store, plan(store.payer, injected=False)) as page:
            await page.goto(url)
            await page.click("#pay")
            await reach(page, "no-wallet")
            assert "Install a wallet" in (await status(page))[2]
            await looked_at(page, "no-wallet")
    request = await store.ledger.get(request_id)
    assert request is not None and request.state is State.ISSUED

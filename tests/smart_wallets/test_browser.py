"""The hosted page paid in Chromium by an injected wallet that answers like a smart wallet.

The injected EIP-1193 provider (the page test's double) reports the smart
wallet's address and answers `eth_signTypedData_v4` the way smart wallets do:
an EIP-1271 signature for a deployed wallet, an ERC-6492-wrapped one for a wallet
not deployed yet.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from tests.page.conftest import PRICE, Store, build_store, connected, link_of, text_of
from tests.page.test_browser import LAUNCH_ARGS, WALLET, chromium_or_skip
from x402_mcp.chains.devchain import DevChain
from x402_mcp.client.payer import OwnedSmartAccount

from .wallets import counterfactual_wallet, deploy_factory, deploy_wallet, has_code, wrapped

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


@pytest.fixture
def store(devchain: DevChain, tmp_path: Path) -> Store:
    return build_store(devchain, tmp_path / "ledger.sqlite", page_port=0)


@contextlib.contextmanager
def allowing(chain: DevChain, factory: str) -> Iterator[None]:
    """Let the chain's shared settlement backend call `factory`, for this test only."""
    settlement = chain.settlement()
    before = settlement.erc6492_factories
    settlement.erc6492_factories = before | {factory.lower()}
    try:
        yield
    finally:
        settlement.erc6492_factories = before


@contextlib.asynccontextmanager
async def smart_wallet_page(account: OwnedSmartAccount) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    executable = chromium_or_skip()
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=str(executable), args=LAUNCH_ARGS)
        try:
            context = await browser.new_context()
            await context.expose_function(
                "__walletSign", lambda typed: "0x" + account.sign_typed_data(json.loads(typed)).hex()
            )
            await context.add_init_script(WALLET.replace("ADDRESS", json.dumps(account.address)))
            yield await context.new_page()
        finally:
            await browser.close()


@pytest.mark.parametrize("deployed", [True, False], ids=["EIP-1271", "ERC-6492"])
async def test_a_person_with_a_smart_wallet_pays_on_the_page(store: Store, deployed: bool) -> None:
    owner = Account.create()
    factory = deploy_factory(store.chain)
    if deployed:
        account = OwnedSmartAccount(owner, deploy_wallet(store.chain, owner.address), wrap=wrapped)
    else:
        address, calldata = counterfactual_wallet(store.chain, factory, owner.address)
        account = OwnedSmartAccount(owner, address, wrap=wrapped, deployment=(factory, calldata))
    store.chain.mint(account.address, "1")

    with allowing(store.chain, factory):
        async with connected(store) as client, smart_wallet_page(account) as page:
            unpaid = await client.call_tool("answer", {"question": "smart?"})
            request_id, url = link_of(unpaid)
            await page.goto(url)
            await page.click("#pay")
            await page.wait_for_selector("main[data-state='paid']", timeout=15_000)
            assert "eth_signTypedData_v4" in await page.evaluate("window.__walletCalls")
            result = await client.call_tool("answer", {"question": "smart?"})

    assert not result.is_error, text_of(result)
    assert store.payee_balance() == PRICE
    assert store.chain.balance_of(account.address) == 1_000_000 - PRICE
    assert has_code(store.chain, account.address)
    [settled] = await store.ledger.settlements()
    assert settled.payer == account.address
    request = await store.ledger.get(request_id)
    assert request is not None and request.tx_hash == settled.tx_hash


async def test_a_smart_wallet_signing_with_the_wrong_key_is_told_why_on_the_page(store: Store) -> None:
    wallet = deploy_wallet(store.chain, Account.create().address)
    store.chain.mint(wallet, "1")
    impostor = OwnedSmartAccount(Account.create(), wallet, wrap=wrapped)

    async with connected(store) as client, smart_wallet_page(impostor) as page:
        _, url = link_of(await client.call_tool("answer", {"question": "smart?"}))
        await page.goto(url)
        await page.click("#pay")
        # A locator, not wait_for_function: the page's CSP forbids evaluating strings.
        # The payer reads a plain sentence; the server's own words sit under the details.
        await page.get_by_text("The signature did not match your account", exact=False).wait_for(
            timeout=15_000
        )
        assert await page.locator("main").get_attribute("data-state") == "refused"
        assert "did not accept the signature" in (await page.locator("#error-detail").text_content() or "")
    assert store.payee_balance() == 0

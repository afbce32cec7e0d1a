"""The operator page: opt-in, token-protected, read-only, and what it shows of known payments."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from eth_account import Account
from mcp import Client
from mcp.server import MCPServer

from tests.page.conftest import serving
from tests.page.test_browser import ARTIFACTS
from tests.page.test_states import axe_violations, chromium_endpoint  # noqa: F401 - fixture
from x402_mcp import Payments, paid
from x402_mcp.chains.devchain import DevChain
from x402_mcp.client.payer import read_challenge, sign_payment
from x402_mcp.core.challenge import META_PAYMENT
from x402_mcp.core.states import Event
from x402_mcp.errors import ConfigurationError
from x402_mcp.ledger.base import PaymentRequest
from x402_mcp.ledger.sqlite import SQLiteLedger

pytestmark = pytest.mark.anyio
TOKEN = "operator-token-0123456789"


@dataclass
class Operated:
    base: str
    payments: Payments
    ledger: SQLiteLedger
    tx_hash: str
    stuck_id: str


def _server(chain: DevChain, tmp_path: Path, **options: Any) -> tuple[MCPServer[Any], Payments, SQLiteLedger]:
    ledger = SQLiteLedger(tmp_path / "ledger.sqlite")
    payments = Payments(
        pay_to=Account.create().address,
        network=chain.network,
        settlement=chain.settlement(),
        ledger=ledger,
        public_url="http://pay.test",
        **options,
    )
    server = MCPServer("research", extensions=[payments])

    @server.tool()
    @paid(price="0.25")
    async def research_query(question: str) -> str:
        return f"answer to {question}"

    return server, payments, ledger


@pytest.fixture
async def operated(devchain: DevChain, tmp_path: Path) -> AsyncIterator[Operated]:
    server, payments, ledger = _server(devchain, tmp_path, operator_token=TOKEN)
    async with Client(server, mode="legacy") as client:
        challenge = await client.call_tool("research_query", {"question": "q"})
        payment = sign_payment(devchain.new_account(usdc="1"), read_challenge(challenge))
        paid_call = await client.call_tool(
            "research_query", {"question": "q"}, meta={META_PAYMENT: payment.dump()}
        )
        assert not paid_call.is_error
        tx_hash = str((paid_call.meta or {})["x402/payment-response"]["transaction"])
    # A settlement cut short an hour ago: it awaits reconciliation.
    now = time.time() - 3600
    stuck = PaymentRequest(
        id="pr_stuck_settlement_000000",
        tool="research_query",
        price=250_000,
        asset=payments.asset.address,
        network=payments.network.caip2,
        pay_to=payments.pay_to,
        caller=None,
        created_at=now,
        expires_at=now + 600,
        max_timeout_seconds=600,
    )
    await ledger.issue(stuck)
    await ledger.transition(stuck.id, Event.BEGIN_SETTLEMENT, now=now, payload="{}", lease_until=now + 60)
    async with serving(server.streamable_http_app()) as base:
        yield Operated(base, payments, ledger, tx_hash, stuck.id)


async def test_the_page_asks_for_the_token_and_then_shows_revenue(operated: Operated) -> None:
    async with httpx2.AsyncClient(base_url=operated.base, timeout=10) as http:
        asked = await http.get("/operator")
        assert asked.status_code == 401 and 'name="token"' in asked.text
        assert "0.250000" not in asked.text
        wrong = await http.post("/operator/login", data={"token": "x" * 30})
        assert wrong.status_code == 401 and "That is not the operator token" in wrong.text
        signed_in = await http.post("/operator/login", data={"token": TOKEN})
        assert signed_in.status_code == 303
        cookie = signed_in.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/operator" in cookie
        assert TOKEN not in cookie

        page = await http.get("/operator")  # the session cookie, kept by the client
        assert page.status_code == 200
        assert "1</strong> payment(s)" in page.text and "0.250000 USDC" in page.text
        assert operated.tx_hash in page.text
        assert operated.stuck_id in page.text and "awaiting reconciliation" in page.text
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp
        assert page.headers["cache-control"] == "no-store"

    async with httpx2.AsyncClient(base_url=operated.base, timeout=10) as script:
        bearer = await script.get("/operator", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 200 and operated.tx_hash in bearer.text
        assert (await script.get("/operator", headers={"Authorization": "Bearer nope"})).status_code == 401
        assert (
            await script.post("/operator", headers={"Authorization": f"Bearer {TOKEN}"})
        ).status_code == 405


async def test_the_page_changes_nothing(operated: Operated) -> None:
    before = [(r.id, r.state) for r in await operated.ledger.requests(limit=100)]
    trail = len(await operated.ledger.audit_trail())
    async with httpx2.AsyncClient(base_url=operated.base, timeout=10) as http:
        for _ in range(2):
            assert (
                await http.get("/operator", headers={"Authorization": f"Bearer {TOKEN}"})
            ).status_code == 200
    assert [(r.id, r.state) for r in await operated.ledger.requests(limit=100)] == before
    assert len(await operated.ledger.audit_trail()) == trail


async def test_without_a_token_there_is_no_page(devchain: DevChain, tmp_path: Path) -> None:
    server, _, _ = _server(devchain, tmp_path)
    async with serving(server.streamable_http_app()) as base, httpx2.AsyncClient(timeout=10) as http:
        assert (await http.get(f"{base}/operator")).status_code == 404
    with pytest.raises(ConfigurationError, match="at least 16 characters"):
        _server(devchain, tmp_path, operator_token="short")


@pytest.mark.browser
async def test_the_page_in_chromium_is_axe_clean_and_photographed(
    chromium_endpoint: str,  # noqa: F811 - the fixture
    operated: Operated,
) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        browser = await driver.chromium.connect_over_cdp(chromium_endpoint)
        context = await browser.new_context(viewport={"width": 1000, "height": 900})
        requested: list[str] = []
        context.on("request", lambda request: requested.append(request.url))
        try:
            page = await context.new_page()
            await page.goto(f"{operated.base}/operator")
            assert await axe_violations(page) == []
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "operator-login.png"), full_page=True)
            await page.fill("#token", TOKEN)
            await page.click("button[type=submit]")
            await page.wait_for_selector("svg.chart")
            assert await page.locator("svg.chart rect.bar").count() == 30
            assert await axe_violations(page) == []
            await page.screenshot(path=str(ARTIFACTS / "operator-dashboard.png"), full_page=True)
            narrow = await context.new_page()
            await narrow.set_viewport_size({"width": 380, "height": 800})
            await narrow.goto(f"{operated.base}/operator")
            assert await axe_violations(narrow) == []
            await narrow.screenshot(path=str(ARTIFACTS / "operator-dashboard-narrow.png"), full_page=True)
        finally:
            await context.close()
    assert requested and all(url.startswith(operated.base) for url in requested), requested

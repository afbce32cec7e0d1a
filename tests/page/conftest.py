"""A paid server whose payment page is really served on loopback, and helpers to drive it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from mcp import Client
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent

# Re-exported: the page's tests, and others, take it from here (it lives in tests/asgi.py).
from tests.asgi import serving as serving
from x402_mcp import Payments, paid
from x402_mcp.chains.devchain import DevChain
from x402_mcp.core.challenge import META_HOSTED_URL, META_REQUEST_ID
from x402_mcp.ledger.sqlite import SQLiteLedger

PRICE = 50_000  # $0.05
TRICKY = '<script>alert("x")</script> & <b>bold</b>'


@dataclass
class Store:
    chain: DevChain
    payments: Payments
    server: MCPServer[Any]
    ledger: SQLiteLedger
    payer: LocalAccount
    payee: str
    runs: dict[str, int] = field(default_factory=dict)
    fail_next: list[bool] = field(default_factory=list)

    def payee_balance(self) -> int:
        return self.chain.balance_of(self.payee)


@pytest.fixture(scope="session")
def page_chain() -> DevChain:
    return DevChain()


def build_store(chain: DevChain, ledger_path: Path, *, demo: bool = True, **options: Any) -> Store:
    payee = Account.create().address
    ledger = SQLiteLedger(ledger_path)
    payments = Payments(
        pay_to=payee, network=chain.network, settlement=chain.settlement(), ledger=ledger, **options
    )
    if demo:
        payments.demo_chain = chain
    server = MCPServer("bookshop", extensions=[payments])
    store = Store(chain, payments, server, ledger, chain.new_account(usdc="10"), payee)

    @server.tool()
    @paid(price="0.05", description=TRICKY)
    async def answer(question: str) -> str:
        """Answer a question."""
        store.runs["answer"] = store.runs.get("answer", 0) + 1
        if store.fail_next and store.fail_next.pop():
            raise ToolError("the answer engine is down")
        return f"answer to {question}"

    return store


@pytest.fixture
def store(page_chain: DevChain, tmp_path: Path) -> Iterator[Store]:
    """The side-port page (public_url unset, page_port 0: any free loopback port)."""
    snapshot = page_chain.snapshot()
    yield build_store(page_chain, tmp_path / "ledger.sqlite", page_port=0)
    page_chain.revert(snapshot)


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def link_of(result: CallToolResult) -> tuple[str, str]:
    """(paymentRequestId, hostedUrl) of a challenge."""
    assert result.is_error, text_of(result)
    meta = result.meta or {}
    return str(meta[META_REQUEST_ID]), str(meta[META_HOSTED_URL])


@contextlib.asynccontextmanager
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(timeout=10) as client:
        yield client


@contextlib.asynccontextmanager
async def connected(store: Store, mode: str = "legacy") -> AsyncIterator[Client]:
    async with Client(store.server, mode=mode) as client:
        yield client

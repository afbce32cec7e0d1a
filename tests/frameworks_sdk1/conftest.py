"""The doors of the older MCP line (MCP SDK 1.x `mcp.server.fastmcp.FastMCP` and FastMCP 3),
each test run on both, in process, with the SDK 1.x client of the installed SDK.

These tests need MCP SDK 1.x installed (the `.venv-mcp1` environment .ci/run builds from
tools/mcp1-constraints.txt); next to SDK 2.x they are not collected (see `collect_ignore`),
except `test_cross_line.py`, which drives that environment's CLI from this one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from tests.sdk_client import SDK1Client
from tests.sdk_client import in_memory as in_memory_client
from x402_mcp import Payments, paid
from x402_mcp.chains.devchain import DevChain
from x402_mcp.frameworks.choice import FRAMEWORKS, ToolError, in_memory, paid_server
from x402_mcp.frameworks.detect import sdk_major
from x402_mcp.ledger.sqlite import SQLiteLedger

ON_SDK1 = sdk_major() < 2
IN_PROCESS = ["test_doors.py", "test_sdk1_seam.py", "test_fail_closed.py", "test_fastmcp3.py"]
collect_ignore = ["test_cross_line.py"] if ON_SDK1 else IN_PROCESS

if not ON_SDK1:
    # The official x402 MCP package's environment, for test_cross_line.py (next to SDK 2.x).
    from tests.interop_official_mcp.conftest import official  # noqa: F401

PRICE = 50_000  # $0.05


@dataclass
class Shop:
    """A paid server of one framework on the embedded chain, its payer, and run counters."""

    chain: DevChain
    payments: Payments
    server: Any
    payer: LocalAccount
    payee: str
    runs: dict[str, int] = field(default_factory=dict)
    fail_next: list[bool] = field(default_factory=list)

    def balances(self) -> tuple[int, int]:
        return self.chain.balance_of(self.payer.address), self.chain.balance_of(self.payee)


@pytest.fixture(scope="session")
def old_line_chain() -> DevChain:
    return DevChain()


@pytest.fixture(params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def add_tools(shop: Shop) -> None:
    server = shop.server

    @server.tool()
    def ping() -> str:
        return "pong"

    @server.tool()
    @paid(price="0.05", description="one answer")
    async def answer(question: str) -> str:
        """Answer a question."""
        shop.runs["answer"] = shop.runs.get("answer", 0) + 1
        if shop.fail_next and shop.fail_next.pop():
            raise ToolError("the answer engine is down")
        return f"answer to {question}"

    # The other order: @paid above the tool decorator.
    @paid(price="0.01")
    @server.tool()
    def shout(words: str) -> dict[str, str]:
        shop.runs["shout"] = shop.runs.get("shout", 0) + 1
        return {"loud": words.upper()}


@pytest.fixture
def shop(old_line_chain: DevChain, tmp_path: Path, framework: str) -> Iterator[Shop]:
    snapshot = old_line_chain.snapshot()
    payee = Account.create().address
    payments = Payments(
        pay_to=payee,
        network=old_line_chain.network,
        settlement=old_line_chain.settlement(),
        ledger=SQLiteLedger(tmp_path / "ledger.sqlite"),
        public_url="http://pay.test",
    )
    server = paid_server("shop", payments, framework)
    shop = Shop(old_line_chain, payments, server, old_line_chain.new_account(usdc="10"), payee)
    add_tools(shop)
    yield shop
    old_line_chain.revert(snapshot)


@pytest.fixture
async def client(shop: Shop) -> AsyncIterator[SDK1Client]:
    async with connected(shop.server) as session:
        yield session


def connected(server: Any) -> Any:
    """An in-memory SDK 1.x client session on `server` (any framework of the older line)."""
    return in_memory_client(in_memory(server))

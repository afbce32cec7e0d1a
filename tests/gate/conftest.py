"""A paid MCP server on the embedded chain, rebuilt cheaply for every test, on each framework.

`shop` is parametrised over the two doors: the MCP SDK's `MCPServer`
(`extensions=[payments]`) and FastMCP 4 (`payments.install(mcp)`). Every gate
test that takes it runs on both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastmcp import FastMCP
from mcp import Client
from mcp.server import MCPServer, Server
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent

from x402_mcp import Payments, paid
from x402_mcp.chains.devchain import DevChain
from x402_mcp.client.payer import read_challenge, sign_payment
from x402_mcp.core.wire import PaymentPayload, PaymentRequired
from x402_mcp.frameworks._fastmcp_seam import lowlevel_server
from x402_mcp.ledger.sqlite import SQLiteLedger

PRICE = 50_000  # $0.05
FRAMEWORKS = ["mcpserver", "fastmcp"]

AnyServer = MCPServer[Any] | FastMCP[Any]


def new_server(framework: str, name: str, payments: Payments) -> AnyServer:
    """A server of `framework` with `payments` installed the way its README section says."""
    if framework == "mcpserver":
        return MCPServer(name, extensions=[payments])
    server: FastMCP[Any] = FastMCP(name)
    payments.install(server)
    return server


def connectable(server: AnyServer) -> MCPServer[Any] | Server[Any]:
    """What `mcp.Client` connects to in memory: the `MCPServer`, or FastMCP's low-level server."""
    return server if isinstance(server, MCPServer) else lowlevel_server(server)


def http_app(server: AnyServer, **options: Any) -> Any:
    """The server's streamable HTTP app (MCP at `/mcp`, the page at `/pay`)."""
    if isinstance(server, MCPServer):
        return server.streamable_http_app(**options)
    return server.http_app(**options)


def per_word(words: str) -> str:
    """$0.001 per word, at least $0.01: an exact decimal string, never a float."""
    return str(max(Decimal("0.01"), Decimal("0.001") * len(words.split())))


@dataclass
class Shop:
    """Everything a gate test touches: chain, payments, server, payer, and run counters."""

    chain: DevChain
    payments: Payments
    server: AnyServer
    ledger: SQLiteLedger
    payer: LocalAccount
    payee: str
    runs: dict[str, int] = field(default_factory=dict)
    fail_next: list[bool] = field(default_factory=list)

    def balances(self) -> tuple[int, int]:
        return self.chain.balance_of(self.payer.address), self.chain.balance_of(self.payee)

    @property
    def framework(self) -> str:
        return "mcpserver" if isinstance(self.server, MCPServer) else "fastmcp"

    def connectable(self) -> MCPServer[Any] | Server[Any]:
        return connectable(self.server)

    def http_app(self, **options: Any) -> Any:
        return http_app(self.server, **options)

    def pay(self, challenge: CallToolResult) -> PaymentPayload:
        return sign_payment(self.payer, read_challenge(challenge))


@pytest.fixture(scope="session")
def gate_chain() -> DevChain:
    return DevChain()


@pytest.fixture(params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def shop(gate_chain: DevChain, tmp_path: Path, framework: str) -> Iterator[Shop]:
    snapshot = gate_chain.snapshot()
    payee = Account.create().address
    ledger = SQLiteLedger(tmp_path / "ledger.sqlite")
    payments = Payments(
        pay_to=payee,
        network=gate_chain.network,
        settlement=gate_chain.settlement(),
        ledger=ledger,
        public_url="http://pay.test",
    )
    server = new_server(framework, "shop", payments)
    shop = Shop(gate_chain, payments, server, ledger, gate_chain.new_account(usdc="10"), payee)

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

    # The other order: @paid above @server.tool().
    @paid(price=per_word)
    @server.tool()
    def summarize(words: str) -> str:
        shop.runs["summarize"] = shop.runs.get("summarize", 0) + 1
        return f"summary of {len(words.split())} words"

    yield shop
    gate_chain.revert(snapshot)


@pytest.fixture(params=["legacy", "auto"])
async def client(request: pytest.FixtureRequest, shop: Shop) -> AsyncIterator[Client]:
    async with Client(shop.connectable(), mode=request.param) as connected:
        yield connected


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


def challenge_of(result: CallToolResult) -> PaymentRequired:
    assert result.is_error, text_of(result)
    return read_challenge(result)


def drain_payer(shop: Shop) -> None:
    """The payer spends their whole balance elsewhere, so a transfer from them must revert."""
    chain, payer = shop.chain, shop.payer
    chain.fund_eth(payer.address, 10**17)
    with chain.lock:
        token = chain.token.contract
        tx = token.functions.transfer(
            Account.create().address, chain.token.balance_of(payer.address)
        ).build_transaction(
            {
                "from": payer.address,
                "gas": 100_000,
                "nonce": chain.w3.eth.get_transaction_count(payer.address),
            }
        )
        sent = chain.w3.eth.send_raw_transaction(payer.sign_transaction(tx).raw_transaction)
        assert chain.w3.eth.wait_for_transaction_receipt(sent, poll_latency=0.01)["status"] == 1

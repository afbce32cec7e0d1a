"""A local Solana (LiteSVM behind a JSON-RPC server), the official x402 SVM facilitator on it,
and a paid MCP server on the embedded EVM chain that also accepts USDC on that Solana."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from anyio.to_thread import run_sync
from eth_account import Account
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from solders.keypair import Keypair

from x402_mcp import Payments, Solana, paid
from x402_mcp.chains.devchain import DevChain
from x402_mcp.client.payer import read_challenge
from x402_mcp.ledger.sqlite import SQLiteLedger
from x402_mcp.settlement.facilitator import FacilitatorSettlement

from ..facilitator.serving import serving
from .localsvm import LocalSolana
from .official import ignore_solana_py_deprecations, official_svm_facilitator_app, official_svm_payment
from .rpc import solana_rpc_app


@dataclass(frozen=True)
class LocalSolanaNode:
    svm: LocalSolana
    rpc_url: str


@pytest.fixture
async def local_solana() -> AsyncIterator[LocalSolanaNode]:
    """A fresh LiteSVM with devnet USDC, served over JSON-RPC on loopback."""
    ignore_solana_py_deprecations()
    svm = LocalSolana()
    async with serving(solana_rpc_app(svm)) as rpc_url:
        yield LocalSolanaNode(svm, rpc_url)


@pytest.fixture
async def svm_facilitator(local_solana: LocalSolanaNode) -> AsyncIterator[str]:
    """The official x402 SVM facilitator, its fee payer `local_solana.svm.fee_payer`; yields its URL."""
    app = official_svm_facilitator_app(local_solana.svm.fee_payer, local_solana.rpc_url)
    async with serving(app) as url:
        yield url


@dataclass
class SolanaShop:
    chain: DevChain
    node: LocalSolanaNode
    payments: Payments
    server: MCPServer[Any]
    ledger: SQLiteLedger
    payee: str
    payer: Keypair
    runs: list[str] = field(default_factory=list)
    fail_next: list[bool] = field(default_factory=list)

    async def pay(self, challenge: CallToolResult, payer: Keypair | None = None) -> dict[str, Any]:
        assert challenge.is_error, text_of(challenge)
        required = read_challenge(challenge).dump()
        return await run_sync(official_svm_payment, required, payer or self.payer, self.node.rpc_url)

    def balances(self) -> tuple[int, int]:
        svm = self.node.svm
        return svm.usdc_balance(str(self.payer.pubkey())), svm.usdc_balance(self.payee)


@pytest.fixture(scope="module")
def evm_chain() -> DevChain:
    return DevChain()


@pytest.fixture
def evm_snapshot(evm_chain: DevChain) -> Iterator[DevChain]:
    snapshot = evm_chain.snapshot()
    yield evm_chain
    evm_chain.revert(snapshot)


def build_shop(chain: DevChain, node: LocalSolanaNode, facilitator_url: str, ledger_path: Path) -> SolanaShop:
    payee = str(Keypair().pubkey())
    node.svm.open_token_account(payee)
    ledger = SQLiteLedger(ledger_path)
    payments = Payments(
        pay_to=Account.create().address,
        network=chain.network,
        settlement=chain.settlement(),
        ledger=ledger,
        public_url="http://pay.test",
        also_accept=[
            Solana(payee, settlement=FacilitatorSettlement(facilitator_url, network="solana-devnet"))
        ],
    )
    server = MCPServer("solana-shop", extensions=[payments])
    shop = SolanaShop(chain, node, payments, server, ledger, payee, node.svm.new_payer(usdc="1"))

    @server.tool()
    @paid(price="0.05")
    async def answer(question: str) -> str:
        shop.runs.append(question)
        if shop.fail_next and shop.fail_next.pop():
            raise ToolError("the answer engine is down")
        return f"answer to {question}"

    @server.tool()
    @paid(price="0.05", settle="after")
    async def late(question: str) -> str:
        """The x402 spec's order: verify, run, then settle."""
        shop.runs.append(f"late:{question}")
        return f"late answer to {question}"

    return shop


@pytest.fixture
async def shop(
    evm_snapshot: DevChain, local_solana: LocalSolanaNode, svm_facilitator: str, tmp_path: Path
) -> AsyncIterator[SolanaShop]:
    shop = build_shop(evm_snapshot, local_solana, svm_facilitator, tmp_path / "ledger.sqlite")
    yield shop
    await shop.ledger.close()


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))

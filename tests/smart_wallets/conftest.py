"""A smart wallet's owner, an allowlisted wallet factory, a backend, and a paid MCP server
(payee and requirements are the settlement tests')."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from mcp import Client
from mcp.server import MCPServer

from x402_mcp import Payments, paid
from x402_mcp.chains.devchain import DevChain, TokenChain
from x402_mcp.ledger.base import Ledger
from x402_mcp.ledger.sqlite import SQLiteLedger
from x402_mcp.settlement.local import LocalSettlement

from ..settlement.conftest import PRICE, payee, requirements
from .wallets import deploy_factory

__all__ = ["PRICE", "payee", "requirements"]

SHOP_PRICE = 50_000  # the shop's `answer`, $0.05


@pytest.fixture
def owner() -> LocalAccount:
    """The EOA that signs for the wallet; it holds neither tokens nor ETH."""
    return Account.create()


@pytest.fixture
def factory(chain: TokenChain) -> str:
    return deploy_factory(chain)


@pytest.fixture
def settlement(chain: TokenChain, factory: str) -> LocalSettlement:
    """Local settlement with its own gas account, allowed to call `factory` for ERC-6492 payers."""
    gas = Account.create()
    chain.fund_eth(gas.address, 10**18)
    return LocalSettlement(
        chain.w3, gas, chain.network_info, time.time, lock=chain.lock, erc6492_factories=[factory]
    )


@dataclass
class Shop:
    """A server selling `answer` for $0.05, settling locally with an allowlisted factory."""

    chain: DevChain
    server: MCPServer
    payments: Payments
    ledger: Ledger
    payee: str
    factory: str
    runs: list[str]


@pytest.fixture
def shop(devchain: DevChain, tmp_path: Path) -> Shop:
    payee = Account.create().address
    factory = deploy_factory(devchain)
    gas = Account.create()
    devchain.fund_eth(gas.address, 10**18)
    settlement = LocalSettlement(
        devchain.w3, gas, devchain.network_info, time.time, lock=devchain.lock, erc6492_factories=[factory]
    )
    ledger = SQLiteLedger(tmp_path / "ledger.sqlite")
    payments = Payments(
        pay_to=payee,
        network=devchain.network,
        settlement=settlement,
        ledger=ledger,
        public_url="http://pay.test",
    )
    server = MCPServer("shop", extensions=[payments])
    runs: list[str] = []

    @server.tool()
    @paid(price="0.05", description="one answer")
    async def answer(question: str) -> str:
        runs.append(question)
        return f"answer to {question}"

    return Shop(devchain, server, payments, ledger, payee, factory, runs)


@pytest.fixture
async def client(shop: Shop) -> AsyncIterator[Client]:
    async with Client(shop.server) as connected:
        yield connected

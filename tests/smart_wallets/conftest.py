"""A smart wallet's owner, an allowlisted wallet factory and a backend (payee and requirements
are the settlement tests')."""

from __future__ import annotations

import time

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from x402_mcp.devchain import TokenChain
from x402_mcp.settlement.local import LocalSettlement

from ..settlement.conftest import PRICE, payee, requirements
from .wallets import deploy_factory

__all__ = ["PRICE", "payee", "requirements"]


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

"""A funded payer, a fresh payee and their requirements, on whichever chain the test runs."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from x402_mcp.chains.devchain import TokenChain
from x402_mcp.core.wire import PaymentRequirements

from ..chains import requirements_for

PRICE = 10_000  # $0.01


@pytest.fixture
def payer(chain: TokenChain) -> LocalAccount:
    return chain.new_account("10")


@pytest.fixture
def payee() -> str:
    return str(Account.create().address)


@pytest.fixture
def requirements(chain: TokenChain, payee: str) -> PaymentRequirements:
    return requirements_for(chain, payee, amount=str(PRICE))

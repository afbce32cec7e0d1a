"""Facilitators on loopback for the tests: ours over each chain under test, and the official one on anvil."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from eth_account import Account

from x402_mcp.chains.devchain import TokenChain
from x402_mcp.facilitator import facilitator_app

from ..chains import AnvilChain
from .official import official_facilitator_app
from .serving import TOKEN, serving


@pytest.fixture
async def our_facilitator(chain: TokenChain) -> AsyncIterator[str]:
    """Our facilitator server over the chain's local settlement, behind `TOKEN`; yields its URL.

    It settles for any payee (the tests pay fresh addresses); `test_server` covers the allowlist.
    """
    async with serving(facilitator_app(chain.settlement(), token=TOKEN)) as url:
        yield url


@pytest.fixture
async def official_facilitator(anvil: AnvilChain) -> AsyncIterator[str]:
    """The official x402 facilitator library, settling on anvil with a gas key of its own."""
    pytest.importorskip("x402", reason="the official x402 package is a test dependency")
    gas = Account.create()
    anvil.fund_eth(gas.address, 10**18)
    async with serving(official_facilitator_app(gas.key.to_0x_hex(), anvil.rpc_url, anvil.network)) as url:
        yield url

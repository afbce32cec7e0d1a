"""`PayingClient` pays the official x402 MCP server from a smart account (anvil)."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from tests.chains import AnvilChain
from tests.interop_official_mcp.conftest import official, our_facilitator  # noqa: F401 (fixtures)
from tests.interop_official_mcp.official import official_server
from tests.interop_official_mcp.test_interop import PRICE, _official_env
from x402_mcp.client import Budget, PayingClient
from x402_mcp.client.payer import OwnedSmartAccount

from .wallets import deploy_wallet, wrapped

pytestmark = [pytest.mark.anyio, pytest.mark.anvil]


async def test_paying_client_pays_the_official_server_from_a_smart_account(
    anvil: AnvilChain,
    official: Path,  # noqa: F811
    our_facilitator: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    owner = Account.create()
    account = OwnedSmartAccount(owner, deploy_wallet(anvil, owner.address), wrap=wrapped)
    anvil.mint(account.address, "1")
    payee = Account.create().address
    budget = Budget(per_call="0.05", file=tmp_path / "budget.sqlite")

    async with (
        official_server(official, _official_env(anvil, our_facilitator, payee), tmp_path) as url,
        PayingClient(url, account=account, budget=budget, assets=[anvil.asset], mode="legacy") as client,
    ):
        answer = await client.call_tool("answer", {"question": "smart interop"})

    assert not answer.is_error, answer.text
    assert "official answer to smart interop" in answer.text
    assert answer.receipt is not None and answer.receipt.success
    assert anvil.balance_of(payee) == PRICE
    assert anvil.balance_of(account.address) == 1_000_000 - PRICE

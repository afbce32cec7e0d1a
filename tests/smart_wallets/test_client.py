"""`PayingClient` paying from a smart account (`OwnedSmartAccount`, a `PaymentSigner`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from x402_mcp.client import Budget, PayingClient
from x402_mcp.client.payer import OwnedSmartAccount, PaymentSigner

from .conftest import Shop
from .wallets import counterfactual_wallet, deploy_wallet, has_code, wrapped

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("deployed", [True, False], ids=["deployed (EIP-1271)", "counterfactual (ERC-6492)"])
async def test_an_agent_pays_from_a_smart_account(shop: Shop, tmp_path: Path, deployed: bool) -> None:
    owner = Account.create()
    if deployed:
        account = OwnedSmartAccount(owner, deploy_wallet(shop.chain, owner.address), wrap=wrapped)
    else:
        address, calldata = counterfactual_wallet(shop.chain, shop.factory, owner.address)
        account = OwnedSmartAccount(owner, address, wrap=wrapped, deployment=(shop.factory, calldata))
    assert isinstance(account, PaymentSigner)
    shop.chain.mint(account.address, "1")
    budget = Budget(file=tmp_path / "budget.sqlite", per_call="0.10")

    async with PayingClient(shop.server, account=account, budget=budget, assets=[shop.chain.asset]) as client:
        result = await client.call_tool("answer", {"question": "who pays?"})

    assert not result.is_error
    assert shop.runs == ["who pays?"]
    assert shop.chain.balance_of(shop.payee) == 50_000
    assert shop.chain.balance_of(account.address) == 1_000_000 - 50_000
    assert has_code(shop.chain, account.address)
    [settled] = await shop.ledger.settlements()
    assert settled.payer == account.address


async def test_a_smart_account_signed_by_the_wrong_key_is_refused(shop: Shop, tmp_path: Path) -> None:
    owner = Account.create()
    wallet = deploy_wallet(shop.chain, owner.address)
    shop.chain.mint(wallet, "1")
    impostor = OwnedSmartAccount(Account.create(), wallet, wrap=wrapped)
    budget = Budget(file=tmp_path / "budget.sqlite", per_call="0.10")

    async with PayingClient(
        shop.server, account=impostor, budget=budget, assets=[shop.chain.asset]
    ) as client:
        with pytest.raises(Exception, match="did not accept the signature"):
            await client.call_tool("answer", {"question": "q"})
    assert shop.runs == []
    assert shop.chain.balance_of(wallet) == 1_000_000

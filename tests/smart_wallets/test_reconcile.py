"""Crash recovery covers the deployment of a counterfactual (ERC-6492) wallet.

A crash leaves the request in `settling` with the wrapped payment, either before
the factory call or between it and the transfer; the `Reconciler` finishes the
settlement from there, deploying the wallet only if it has no code yet.
"""

from __future__ import annotations

import pytest
from eth_account import Account
from mcp import Client

from x402_mcp.client.payer import read_challenge
from x402_mcp.core.states import Event, State
from x402_mcp.gate.reconcile import Reconciler

from .conftest import SHOP_PRICE as PRICE
from .conftest import Shop
from .wallets import counterfactual_wallet, has_code, run, wallet_payment

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("crashed", ["before deploying", "after deploying"])
async def test_a_cut_short_erc6492_settlement_is_finished_by_reconciliation(
    client: Client, shop: Shop, crashed: str
) -> None:
    owner = Account.create()
    wallet, calldata = counterfactual_wallet(shop.chain, shop.factory, owner.address)
    shop.chain.mint(wallet, "1")
    option = read_challenge(await client.call_tool("answer", {"question": "q"})).accepts[0]
    payment = wallet_payment(owner, wallet, option, shape="wrapped", deployment=(shop.factory, calldata))
    clock = shop.payments.clock
    request_id = option.extra["paymentRequestId"]
    await shop.ledger.transition(request_id, Event.BEGIN_SETTLEMENT, now=clock(), payload=payment.to_json())
    if crashed == "after deploying":
        run(shop.chain, shop.factory, calldata)  # the first of the two transactions was mined

    reconciler = Reconciler(
        shop.ledger, shop.payments.settlement, shop.payments.asset, grace_seconds=-1, clock=clock
    )
    outcome = await reconciler.run()

    assert outcome.settled == [request_id]
    paid = await shop.ledger.get(request_id)
    assert paid is not None and paid.state is State.PAID and paid.tx_hash
    assert has_code(shop.chain, wallet)
    assert shop.chain.balance_of(shop.payee) == PRICE
    assert shop.chain.balance_of(wallet) == 1_000_000 - PRICE

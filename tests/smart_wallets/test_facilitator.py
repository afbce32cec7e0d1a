"""Facilitator backends pass smart-wallet payloads through unchanged (our facilitator over HTTP)."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount

from x402_mcp.chains.devchain import TokenChain
from x402_mcp.core.wire import PaymentRequirements
from x402_mcp.facilitator import facilitator_app
from x402_mcp.settlement.facilitator import FacilitatorSettlement
from x402_mcp.settlement.local import LocalSettlement

from ..facilitator.serving import TOKEN, serving
from .conftest import PRICE
from .wallets import counterfactual_wallet, deploy_factory, deploy_wallet, has_code, wallet_payment

pytestmark = pytest.mark.anyio


async def test_smart_wallet_payments_verify_and_settle_through_a_facilitator(
    chain: TokenChain,
    settlement: LocalSettlement,
    factory: str,
    owner: LocalAccount,
    payee: str,
    requirements: PaymentRequirements,
) -> None:
    deployed = deploy_wallet(chain, owner.address)
    counterfactual, calldata = counterfactual_wallet(chain, factory, owner.address)
    rogue = deploy_factory(chain)
    stranger, rogue_calldata = counterfactual_wallet(chain, rogue, owner.address)
    for wallet in (deployed, counterfactual, stranger):
        chain.mint(wallet, "1")
    payments = [
        wallet_payment(owner, deployed, requirements, shape="wrapped"),
        wallet_payment(owner, counterfactual, requirements, shape="wrapped", deployment=(factory, calldata)),
    ]
    refused = wallet_payment(owner, stranger, requirements, deployment=(rogue, rogue_calldata))

    async with serving(facilitator_app(settlement, token=TOKEN)) as url:
        remote = FacilitatorSettlement(url, network=chain.network, token=TOKEN)
        try:
            for payment in payments:
                assert (await remote.verify(payment, requirements)).is_valid
                receipt = await remote.settle(payment, requirements)
                assert receipt.success, receipt.error_message
            verdict = await remote.verify(refused, requirements)
        finally:
            await remote.aclose()

    assert chain.balance_of(payee) == 2 * PRICE
    assert has_code(chain, counterfactual)
    assert verdict.invalid_reason == "eip6492_factory_not_allowed"
    assert rogue in str(verdict.invalid_message)
    assert not has_code(chain, stranger)

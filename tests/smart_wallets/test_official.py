"""Interop: the official x402 facilitator library and ours judge smart-wallet payments alike (anvil).

Both verify the same payloads on the same chain: they must agree on every one,
accepted or refused; the official library then settles a counterfactual payment
we accepted, deploying the wallet the way we do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from x402_mcp.core.wire import PaymentPayload, PaymentRequirements
from x402_mcp.settlement.local import LocalSettlement

from ..chains import AnvilChain, requirements_for
from .wallets import (
    Behaviour,
    counterfactual_wallet,
    deploy_factory,
    deploy_wallet,
    has_code,
    wallet_payment,
)

pytestmark = pytest.mark.anvil


def _official(anvil: AnvilChain, factory: str) -> Any:
    from x402 import x402FacilitatorSync
    from x402.mechanisms.evm import FacilitatorWeb3Signer
    from x402.mechanisms.evm.exact import register_exact_evm_facilitator

    # The library simulates ERC-6492 deployments through Multicall3, which the anvil fixture places.
    gas = Account.create()
    anvil.fund_eth(gas.address, 10**18)
    facilitator = x402FacilitatorSync()
    signer = FacilitatorWeb3Signer("0x" + bytes(gas.key).hex(), anvil.rpc_url)
    register_exact_evm_facilitator(
        facilitator, signer, networks=anvil.network, eip6492_allowed_factories=[factory]
    )
    return facilitator


def _ours(anvil: AnvilChain, factory: str) -> LocalSettlement:
    gas = Account.create()
    anvil.fund_eth(gas.address, 10**18)
    return LocalSettlement(
        anvil.w3, gas, anvil.network_info, time.time, lock=anvil.lock, erc6492_factories=[factory]
    )


def _as_official(payment: PaymentPayload, requirements: PaymentRequirements) -> tuple[Any, Any]:
    from x402.schemas import PaymentPayload as OfficialPayload
    from x402.schemas import PaymentRequirements as OfficialRequirements

    return (
        OfficialPayload.model_validate(payment.dump()),
        OfficialRequirements.model_validate(requirements.model_dump(by_alias=True)),
    )


Case = Callable[[AnvilChain, str, LocalAccount, PaymentRequirements], PaymentPayload]


def _deployed(
    shape: str, behaviour: Behaviour = Behaviour.HONEST, signer: LocalAccount | None = None
) -> Case:
    def build(
        anvil: AnvilChain, factory: str, owner: LocalAccount, requirements: PaymentRequirements
    ) -> PaymentPayload:
        wallet = deploy_wallet(anvil, owner.address, behaviour)
        anvil.mint(wallet, "1")
        return wallet_payment(signer or owner, wallet, requirements, shape=shape)

    return build


def _counterfactual(*, allowed: bool) -> Case:
    def build(
        anvil: AnvilChain, factory: str, owner: LocalAccount, requirements: PaymentRequirements
    ) -> PaymentPayload:
        chosen = factory if allowed else deploy_factory(anvil)
        wallet, calldata = counterfactual_wallet(anvil, chosen, owner.address)
        anvil.mint(wallet, "1")
        return wallet_payment(owner, wallet, requirements, shape="wrapped", deployment=(chosen, calldata))

    return build


CASES: dict[str, tuple[Case, bool]] = {
    "deployed, 65-byte": (_deployed("65-byte"), True),
    "deployed, wrapped": (_deployed("wrapped"), True),
    "counterfactual, allowed factory": (_counterfactual(allowed=True), True),
    "signed by another key": (_deployed("wrapped", signer=Account.create()), False),
    "wrong magic value": (_deployed("65-byte", Behaviour.WRONG_MAGIC), False),
    "wallet reverts": (_deployed("65-byte", Behaviour.REVERTS), False),
    "counterfactual, factory off the allowlist": (_counterfactual(allowed=False), False),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_official_facilitator_and_ours_agree(anvil: AnvilChain, case: str) -> None:
    build, expected = CASES[case]
    factory = deploy_factory(anvil)
    requirements = requirements_for(anvil, Account.create().address)
    payment = build(anvil, factory, Account.create(), requirements)
    official = _official(anvil, factory)

    ours = anyio.run(_ours(anvil, factory).verify, payment, requirements)
    theirs = official.verify(*_as_official(payment, requirements))

    assert ours.is_valid is expected, ours.invalid_message
    assert theirs.is_valid is expected, (theirs.invalid_reason, theirs.invalid_message)
    if not expected and "allowlist" in case:
        assert ours.invalid_reason == theirs.invalid_reason == "eip6492_factory_not_allowed"


def test_the_official_facilitator_settles_a_counterfactual_payment_we_accept(anvil: AnvilChain) -> None:
    factory = deploy_factory(anvil)
    payee = Account.create().address
    requirements = requirements_for(anvil, payee)
    payment = _counterfactual(allowed=True)(anvil, factory, Account.create(), requirements)
    wallet = payment.payload.authorization.from_

    assert anyio.run(_ours(anvil, factory).verify, payment, requirements).is_valid
    settled = _official(anvil, factory).settle(*_as_official(payment, requirements))

    assert settled.success, settled.error_reason
    assert has_code(anvil, wallet)
    assert anvil.balance_of(payee) == int(requirements.amount)

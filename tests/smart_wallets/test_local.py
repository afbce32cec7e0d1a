"""Local settlement of payments from real smart wallets, on DevChain and anvil.

Deployed wallets sign through EIP-1271 (both USDC overloads); counterfactual ones
through ERC-6492, verified by simulating their deployment and paid by deploying
them first. Every refusal names its cause and moves nothing.
"""

from __future__ import annotations

import time

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from x402_mcp.chains.devchain import TokenChain
from x402_mcp.core.erc6492 import ERC6492_MAGIC, wrap_erc6492
from x402_mcp.core.wire import PaymentPayload, PaymentRequirements
from x402_mcp.settlement.checks import (
    ERC6492_FACTORY_NOT_ALLOWED,
    INVALID_SIGNATURE,
    UNDEPLOYED_SMART_WALLET,
)
from x402_mcp.settlement.local import LocalSettlement

from .conftest import PRICE
from .wallets import (
    Behaviour,
    counterfactual_wallet,
    deploy_wallet,
    has_code,
    run,
    set_owner,
    wallet_payment,
)

pytestmark = pytest.mark.anyio


def _nothing_moved(chain: TokenChain, wallet: str, payee: str, payment: PaymentPayload) -> None:
    auth = payment.payload.authorization
    assert chain.balance_of(payee) == 0
    assert chain.balance_of(wallet) == 1_000_000
    assert not chain.token.authorization_state(wallet, auth.nonce)


@pytest.mark.parametrize("shape", ["65-byte", "wrapped"])
async def test_a_deployed_wallet_pays_with_its_owners_signature(
    chain: TokenChain,
    settlement: LocalSettlement,
    owner: LocalAccount,
    payee: str,
    requirements: PaymentRequirements,
    shape: str,
) -> None:
    wallet = deploy_wallet(chain, owner.address)
    chain.mint(wallet, "1")
    payment = wallet_payment(owner, wallet, requirements, shape=shape)

    verdict = await settlement.verify(payment, requirements)
    assert verdict.is_valid, verdict.invalid_message
    result = await settlement.settle(payment, requirements)
    assert result.success, result.error_message
    assert result.payer == wallet
    assert chain.balance_of(payee) == PRICE
    assert chain.balance_of(wallet) == 1_000_000 - PRICE


async def test_a_signature_by_someone_other_than_the_owner_is_refused(
    chain: TokenChain,
    settlement: LocalSettlement,
    owner: LocalAccount,
    payee: str,
    requirements: PaymentRequirements,
) -> None:
    wallet = deploy_wallet(chain, owner.address)
    chain.mint(wallet, "1")
    payment = wallet_payment(Account.create(), wallet, requirements, shape="wrapped")

    verdict = await settlement.verify(payment, requirements)
    assert verdict.invalid_reason == INVALID_SIGNATURE
    assert f"contract wallet {wallet} did not accept" in str(verdict.invalid_message)
    _nothing_moved(chain, wallet, payee, payment)


@pytest.mark.parametrize("behaviour", [Behaviour.WRONG_MAGIC, Behaviour.REVERTS, Behaviour.BURNS_GAS])
async def test_a_misbehaving_wallet_is_refused_within_bounded_gas(
    chain: TokenChain,
    settlement: LocalSettlement,
    owner: LocalAccount,
    payee: str,
    requirements: PaymentRequirements,
    behaviour: Behaviour,
) -> None:
    wallet = deploy_wallet(chain, owner.address, behaviour)
    chain.mint(wallet, "1")
    payment = wallet_payment(owner, wallet, requirements)

    started = time.monotonic()
    verdict = await settlement.verify(payment, requirements)
    assert time.monotonic() - started < 10  # the gas cap bounds even a wallet that loops forever
    assert not verdict.is_valid
    assert verdict.invalid_reason == INVALID_SIGNATURE
    assert "500000 gas" in str(verdict.invalid_message)
    result = await settlement.settle(payment, requirements)
    assert not result.success
    assert result.error_reason == INVALID_SIGNATURE
    _nothing_moved(chain, wallet, payee, payment)


async def test_a_counterfactual_wallet_is_verified_without_deploying_it_and_deployed_to_settle(
    chain: TokenChain,
    settlement: LocalSettlement,
    factory: str,
    owner: LocalAccount,
    payee: str,
    requirements: PaymentRequirements,
) -> None:
    wallet, calldata = counterfactual_wallet(chain, factory, owner.address)
    chain.mint(wallet, "1")  # a counterfactual address can hold tokens before it has code
    payment = wallet_payment(owner, wallet, requirements, shape="wrapped", deployment=(factory, calldata))
    assert payment.payload.signature.endswith(ERC6492_MAGIC.hex())

    verdict = await settlement.verify(payment, requirements)
    assert verdict.is_valid, verdict.invalid_message
    assert not has_code(chain, wallet)  # verification only simulated the deployment

    result = await settlement.settle(payment, requirements)
    assert result.success, result.error_message
    assert has_code(chain, wallet)
    assert chain.balance_of(payee) == PRICE
    assert chain.token.authorization_state(wallet, payment.payload.authorization.nonce)


async def test_an_erc6492_signature_of_a_wallet_deployed_since_is_checked_as_eip1271(
    chain: TokenChain,
    settlement: LocalSettlement,
    factory: str,
    owner: LocalAccount,
    payee: str,
    requirements: PaymentRequirements,
) -> None:
    # Deployed between verify and settle, or by a settle attempt that crashed after its
    # first transaction: the deploy step is skipped and the transfer goes ahead.
    wallet, calldata = counterfactual_wallet(chain, factory, owner.address)
    chain.mint(wallet, "1")
    payment = wallet_payment(owner, wallet, requirements, deployment=(factory, calldata))
    assert (await settlement.verify(payment, requirements)).is_valid
    run(chain, factory, calldata)
    assert has_code(chain, wallet)

    assert (await settlement.verify(payment, requirements)).is_valid
    result = await settlement.settle(payment, requirements)
    assert result.success, result.error_message
    assert chain.balance_of(payee) == PRICE


async def test_a_factory_off_the_allowlist_is_refused_by_name_and_never_called(
    chain: TokenChain, factory: str, owner: LocalAccount, payee: str, requirements: PaymentRequirements
) -> None:
    wallet, calldata = counterfactual_wallet(chain, factory, owner.address)
    chain.mint(wallet, "1")
    payment = wallet_payment(owner, wallet, requirements, deployment=(factory, calldata))
    gas = Account.create()
    chain.fund_eth(gas.address, 10**18)
    strict = LocalSettlement(chain.w3, gas, chain.network_info, time.time, lock=chain.lock)

    verdict = await strict.verify(payment, requirements)
    assert verdict.invalid_reason == ERC6492_FACTORY_NOT_ALLOWED
    assert factory in str(verdict.invalid_message)
    result = await strict.settle(payment, requirements)
    assert result.error_reason == ERC6492_FACTORY_NOT_ALLOWED
    assert not has_code(chain, wallet)
    _nothing_moved(chain, wallet, payee, payment)


async def test_a_factory_call_that_deploys_another_wallet_is_refused(
    chain: TokenChain,
    settlement: LocalSettlement,
    factory: str,
    owner: LocalAccount,
    payee: str,
    requirements: PaymentRequirements,
) -> None:
    wallet, _ = counterfactual_wallet(chain, factory, owner.address, salt=1)
    _, someone_elses = counterfactual_wallet(chain, factory, Account.create().address, salt=1)
    chain.mint(wallet, "1")
    payment = wallet_payment(owner, wallet, requirements, deployment=(factory, someone_elses))

    verdict = await settlement.verify(payment, requirements)
    assert verdict.invalid_reason == UNDEPLOYED_SMART_WALLET
    assert "did not deploy the payer" in str(verdict.invalid_message)
    result = await settlement.settle(payment, requirements)
    assert result.error_reason == UNDEPLOYED_SMART_WALLET
    _nothing_moved(chain, wallet, payee, payment)


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        ("0x" + "00" * 40 + ERC6492_MAGIC.hex(), "is not abi.encode"),
        ("0x" + wrap_erc6492("0x" + "11" * 20, b"", b"").hex(), "empty signature"),
    ],
)
async def test_a_garbage_erc6492_wrapper_is_refused(
    chain: TokenChain,
    settlement: LocalSettlement,
    owner: LocalAccount,
    payee: str,
    requirements: PaymentRequirements,
    signature: str,
    message: str,
) -> None:
    good = wallet_payment(owner, Account.create().address, requirements)
    payment = good.model_copy(update={"payload": good.payload.model_copy(update={"signature": signature})})

    verdict = await settlement.verify(payment, requirements)
    assert verdict.invalid_reason == INVALID_SIGNATURE
    assert message in str(verdict.invalid_message)
    assert chain.balance_of(payee) == 0


async def test_an_owner_changed_between_verify_and_settle_fails_the_settlement_and_moves_nothing(
    chain: TokenChain,
    settlement: LocalSettlement,
    owner: LocalAccount,
    payee: str,
    requirements: PaymentRequirements,
) -> None:
    wallet = deploy_wallet(chain, owner.address)
    chain.mint(wallet, "1")
    payment = wallet_payment(owner, wallet, requirements, shape="wrapped")
    assert (await settlement.verify(payment, requirements)).is_valid

    set_owner(chain, wallet, Account.create().address)
    result = await settlement.settle(payment, requirements)
    assert not result.success
    assert result.error_reason == INVALID_SIGNATURE
    _nothing_moved(chain, wallet, payee, payment)

"""EIP-7702-delegated EOAs on anvil: the token sees code and asks it through EIP-1271."""

from __future__ import annotations

import time

import anyio
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from x402_mcp.core.wire import PaymentPayload
from x402_mcp.settlement.checks import INVALID_SIGNATURE
from x402_mcp.settlement.local import LocalSettlement

from ..chains import AnvilChain, pay, requirements_for
from .wallets import artifact, has_code

pytestmark = pytest.mark.anvil


def _delegate(anvil: AnvilChain, account: LocalAccount, contract: str) -> None:
    """Deploy `contract` and delegate `account` to it with a type-4 transaction sent by a sponsor."""
    compiled = artifact(contract)
    with anvil.lock:
        deployer = anvil.w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
        tx_hash = deployer.constructor().transact({"from": anvil.w3.eth.accounts[0], "gas": 1_000_000})
        target = anvil.w3.eth.wait_for_transaction_receipt(tx_hash)["contractAddress"]
    sponsor = Account.create()
    anvil.fund_eth(sponsor.address, 10**18)
    with anvil.lock:
        chain_id = anvil.w3.eth.chain_id
        authorization = account.sign_authorization(
            {
                "chainId": chain_id,
                "address": target,
                "nonce": anvil.w3.eth.get_transaction_count(account.address),
            }
        )
        base_fee = int(anvil.w3.eth.get_block("latest")["baseFeePerGas"])
        transaction = {
            "type": 4,
            "chainId": chain_id,
            "nonce": 0,
            "to": sponsor.address,
            "value": 0,
            "data": b"",
            "gas": 100_000,
            "maxFeePerGas": 2 * base_fee + 10**9,
            "maxPriorityFeePerGas": 10**9,
            "authorizationList": [authorization],
        }
        signed = sponsor.sign_transaction(transaction)
        tx_hash = anvil.w3.eth.send_raw_transaction(signed.raw_transaction)
        assert anvil.w3.eth.wait_for_transaction_receipt(tx_hash)["status"] == 1
    assert has_code(anvil, account.address)


def _backend(anvil: AnvilChain) -> LocalSettlement:
    gas = Account.create()
    anvil.fund_eth(gas.address, 10**18)
    return LocalSettlement(anvil.w3, gas, anvil.network_info, time.time, lock=anvil.lock)


def _payment(anvil: AnvilChain, delegate: str) -> tuple[LocalAccount, PaymentPayload, str]:
    account = anvil.new_account("1")
    _delegate(anvil, account, delegate)
    payee = Account.create().address
    requirements = requirements_for(anvil, payee)
    return account, pay(account, requirements), payee


def test_an_eoa_delegated_to_a_permissive_delegate_pays(anvil: AnvilChain) -> None:
    account, payment, payee = _payment(anvil, "SelfSigned7702Delegate")
    settlement = _backend(anvil)
    requirements = payment.accepted

    verdict = anyio.run(settlement.verify, payment, requirements)
    assert verdict.is_valid, verdict.invalid_message
    result = anyio.run(settlement.settle, payment, requirements)
    assert result.success, result.error_message
    assert anvil.balance_of(payee) == int(requirements.amount)
    assert anvil.balance_of(account.address) == 1_000_000 - int(requirements.amount)


def test_an_eoa_delegated_to_a_strict_delegate_is_refused_clearly(anvil: AnvilChain) -> None:
    # As with Circle's USDC v2.2, code means EIP-1271 only: its own ECDSA signature no longer counts.
    account, payment, payee = _payment(anvil, "Strict7702Delegate")
    settlement = _backend(anvil)

    verdict = anyio.run(settlement.verify, payment, payment.accepted)
    assert verdict.invalid_reason == INVALID_SIGNATURE
    assert "EIP-7702 delegation" in str(verdict.invalid_message)
    assert anvil.balance_of(payee) == 0
    assert anvil.balance_of(account.address) == 1_000_000

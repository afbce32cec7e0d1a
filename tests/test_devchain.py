"""DevChain: the embedded chain's identity, accounts, snapshots and thread safety."""

from __future__ import annotations

import time

import anyio
import anyio.to_thread
import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_utils.crypto import keccak
from web3 import Web3

from x402_mcp.chains.devchain import DevChain, TokenChain
from x402_mcp.core.wire import SettleResponse
from x402_mcp.errors import ConfigurationError
from x402_mcp.settlement.local import LocalSettlement

from .chains import pay, requirements_for


def _domain_separator(name: str, version: str, chain_id: int, token: str) -> bytes:
    typehash = keccak(
        text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    )
    return keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [typehash, keccak(text=name), keccak(text=version), chain_id, token],
        )
    )


def test_devchain_is_chain_1337_both_over_rpc_and_inside_contracts(devchain: DevChain) -> None:
    assert devchain.network == "eip155:1337"
    assert devchain.w3.eth.chain_id == 1337
    on_chain = devchain.token.contract.functions.DOMAIN_SEPARATOR().call()
    assert on_chain == _domain_separator("USD Coin", "2", 1337, devchain.usdc)


def test_devchain_describes_its_token_and_network(devchain: DevChain) -> None:
    functions = devchain.token.contract.functions
    assert (functions.name().call(), functions.symbol().call(), functions.version().call()) == (
        "USD Coin",
        "USDC",
        "2",
    )
    assert functions.decimals().call() == 6
    assert (devchain.asset.address, devchain.asset.name, devchain.asset.version) == (
        devchain.usdc,
        "USD Coin",
        "2",
    )
    info = devchain.network_info
    assert (info.caip2, info.chain_id, info.label, info.usdc) == (
        "eip155:1337",
        1337,
        "DevChain",
        devchain.asset,
    )


def test_new_accounts_hold_the_usdc_asked_for_and_no_eth(devchain: DevChain) -> None:
    default = devchain.new_account()
    quarter = devchain.new_account(usdc="0.25")
    empty = devchain.new_account(usdc="0")

    assert devchain.balance_of(default.address) == 10_000_000
    assert devchain.balance_of(quarter.address) == 250_000
    assert devchain.balance_of(empty.address) == 0
    assert devchain.w3.eth.get_balance(default.address) == 0
    assert len({default.address, quarter.address, empty.address}) == 3


def test_mint_adds_to_a_balance(devchain: DevChain) -> None:
    holder = devchain.new_account(usdc="1")
    devchain.mint(holder.address, "2.5")
    assert devchain.balance_of(holder.address) == 3_500_000


@pytest.mark.parametrize("amount", [1.5, "0.0000001", "-1", "ten"])
def test_amounts_are_exact_decimal_strings(devchain: DevChain, amount: object) -> None:
    with pytest.raises(ConfigurationError):
        devchain.new_account(usdc=amount)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        devchain.mint(devchain.usdc, amount)  # type: ignore[arg-type]


def test_settlement_is_one_instance_whose_gas_account_is_funded(devchain: DevChain) -> None:
    settlement = devchain.settlement()
    assert devchain.settlement() is settlement
    assert isinstance(settlement, LocalSettlement)
    assert settlement.network == devchain.network_info
    assert settlement.signer in devchain.w3.eth.accounts
    assert devchain.w3.eth.get_balance(Web3.to_checksum_address(settlement.signer)) > 10**18


def test_revert_rewinds_balances(devchain: DevChain) -> None:
    holder = devchain.new_account(usdc="1")
    snapshot = devchain.snapshot()
    devchain.mint(holder.address, "5")
    other = devchain.new_account(usdc="7")
    devchain.revert(snapshot)

    assert devchain.balance_of(holder.address) == 1_000_000
    assert devchain.balance_of(other.address) == 0


@pytest.mark.anyio
async def test_settling_after_a_revert_resyncs_the_gas_nonce(chain: TokenChain) -> None:
    # On anvil a stale (too high) nonce would leave the transaction waiting forever.
    settlement = chain.settlement()
    payer = chain.new_account("1")
    requirements = requirements_for(chain, Account.create().address)
    snapshot = chain.snapshot()
    assert (await settlement.settle(pay(payer, requirements), requirements)).success
    chain.revert(snapshot)

    result = await settlement.settle(pay(payer, requirements), requirements)
    assert result.success, result.error_message
    assert chain.balance_of(requirements.pay_to) == 10_000


def test_a_fresh_devchain_starts_fast() -> None:
    started = time.perf_counter()
    DevChain()
    assert time.perf_counter() - started < 1.0  # about 20 ms here; the bound only catches regressions


def test_devchains_are_independent_even_with_other_chain_ids(devchain: DevChain) -> None:
    other = DevChain(chain_id=84532, token_name="USDC")
    holder = other.new_account(usdc="3")

    assert (other.network, other.w3.eth.chain_id) == ("eip155:84532", 84532)
    on_chain = other.token.contract.functions.DOMAIN_SEPARATOR().call()
    assert on_chain == _domain_separator("USDC", "2", 84532, other.usdc)
    assert devchain.w3.eth.chain_id == 1337, "patching one chain's id must not leak into another"
    assert devchain.balance_of(holder.address) == 0


@pytest.mark.anyio
async def test_sync_calls_from_other_threads_while_settling_are_safe(devchain: DevChain) -> None:
    # py-evm is not thread-safe: the chain's own methods and the settlement's worker
    # thread must take the same lock, or this interleaving corrupts or crashes it.
    settlement = devchain.settlement()
    requirements = requirements_for(devchain, Account.create().address)
    payments = [pay(devchain.new_account("1"), requirements) for _ in range(6)]
    results: list[SettleResponse] = []
    minted: list[int] = []

    async def settle_one(index: int) -> None:
        results.append(await settlement.settle(payments[index], requirements))

    def mint_and_read() -> None:
        account = devchain.new_account("0.5")
        minted.append(devchain.balance_of(account.address))

    async with anyio.create_task_group() as group:
        for index in range(len(payments)):
            group.start_soon(settle_one, index)
            group.start_soon(anyio.to_thread.run_sync, mint_and_read)

    assert [r.error_message for r in results if not r.success] == []
    assert minted == [500_000] * len(payments)
    assert devchain.balance_of(requirements.pay_to) == 10_000 * len(payments)

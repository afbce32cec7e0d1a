"""Real smart wallets for tests: `OwnedWallet` (EIP-1271, one owner EOA) and its CREATE2 factory.

Both come from `tests/contracts/OwnedWallet.sol`, compiled by `tools/compile.mjs`
into the committed artifacts beside it. They are deployed from a node account.
"""

from __future__ import annotations

import enum
import functools
from pathlib import Path
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from web3.contract import Contract

from x402_mcp.chains.devchain import TokenChain
from x402_mcp.core.erc6492 import wrap_erc6492
from x402_mcp.core.evm import sign_authorization
from x402_mcp.core.wire import ExactPayload, PaymentPayload, PaymentRequirements
from x402_mcp.settlement.contracts import ContractArtifact, load_artifact

CONTRACTS = Path(__file__).resolve().parents[1] / "contracts"


class Behaviour(enum.IntEnum):
    """`OwnedWallet.Behaviour`: how its `isValidSignature` answers."""

    HONEST = 0
    WRONG_MAGIC = 1
    REVERTS = 2
    BURNS_GAS = 3


@functools.cache
def artifact(name: str) -> ContractArtifact:
    return load_artifact(CONTRACTS / f"{name}.json")  # type: ignore[arg-type]


def _deployer(chain: TokenChain) -> str:
    return str(chain.w3.eth.accounts[0])


def _deploy(chain: TokenChain, name: str, *args: Any) -> str:
    compiled = artifact(name)
    with chain.lock:
        factory = chain.w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
        tx_hash = factory.constructor(*args).transact({"from": _deployer(chain), "gas": 3_000_000})
        receipt = chain.w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.01)
    assert receipt["status"] == 1
    assert receipt["contractAddress"] is not None
    return str(receipt["contractAddress"])


def contract(chain: TokenChain, name: str, address: str) -> Contract:
    return chain.w3.eth.contract(address=to_checksum_address(address), abi=artifact(name).abi)


def deploy_wallet(chain: TokenChain, owner: str, behaviour: Behaviour = Behaviour.HONEST) -> str:
    """A deployed `OwnedWallet` of `owner`, whose guardian is the deploying node account."""
    return _deploy(chain, "OwnedWallet", to_checksum_address(owner), _deployer(chain), int(behaviour))


def deploy_factory(chain: TokenChain) -> str:
    return _deploy(chain, "OwnedWalletFactory")


def counterfactual_wallet(chain: TokenChain, factory: str, owner: str, salt: int = 0) -> tuple[str, bytes]:
    """(the address `factory` would deploy `owner`'s wallet at, the calldata that deploys it)."""
    functions = contract(chain, "OwnedWalletFactory", factory).functions
    with chain.lock:
        address = str(functions.getAddress(to_checksum_address(owner), salt).call())
    calldata = functions.createAccount(to_checksum_address(owner), salt)._encode_transaction_data()
    return address, bytes.fromhex(calldata[2:])


def run(chain: TokenChain, to: str, data: bytes) -> None:
    """Send `data` to `to` from the node account (as the wallet's guardian, or anyone)."""
    with chain.lock:
        tx_hash = chain.w3.eth.send_transaction(
            {"from": _deployer(chain), "to": to_checksum_address(to), "data": data, "gas": 1_000_000}
        )
        receipt = chain.w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.01)
    assert receipt["status"] == 1


def set_owner(chain: TokenChain, wallet: str, new_owner: str) -> None:
    call = contract(chain, "OwnedWallet", wallet).functions.setOwner(to_checksum_address(new_owner))
    run(chain, wallet, bytes.fromhex(call._encode_transaction_data()[2:]))


def has_code(chain: TokenChain, address: str) -> bool:
    with chain.lock:
        return bool(chain.w3.eth.get_code(to_checksum_address(address)))


def wrapped(signature: bytes) -> bytes:
    """`signature` the way Coinbase Smart Wallet wraps an owner's: abi.encode(ownerIndex 0, signature)."""
    return bytes(abi_encode(["uint256", "bytes"], [0, signature]))


def wallet_payment(
    owner: LocalAccount,
    wallet: str,
    requirements: PaymentRequirements,
    *,
    shape: str = "65-byte",
    deployment: tuple[str, bytes] | None = None,
) -> PaymentPayload:
    """A payment from `wallet`, signed by its `owner`, in one of the shapes smart wallets send.

    `shape` is "65-byte" (the owner's ECDSA signature as is) or "wrapped" (as a
    Coinbase Smart Wallet sends it); `deployment` (factory, calldata) wraps it for ERC-6492.
    """
    signed = sign_authorization(owner, requirements, payer=wallet)
    signature = bytes.fromhex(signed.signature[2:])
    if shape == "wrapped":
        signature = wrapped(signature)
    if deployment is not None:
        signature = wrap_erc6492(deployment[0], deployment[1], signature)
    exact = ExactPayload(signature="0x" + signature.hex(), authorization=signed.authorization)
    return PaymentPayload(accepted=requirements, payload=exact)

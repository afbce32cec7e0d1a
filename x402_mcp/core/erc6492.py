"""ERC-6492 signatures: a counterfactual wallet's signature, wrapped with how to deploy the wallet.

A wallet that is not deployed yet cannot answer EIP-1271, so ERC-6492 wraps its
signature as `abi.encode(address factory, bytes factoryCalldata, bytes signature)`
followed by a 32-byte magic suffix: deploying the wallet (calling `factory` with
`factoryCalldata`) makes `signature` checkable. Calling a factory is a
transaction the verifier chooses to make on someone's behalf, so only factories
on an allowlist are ever called (as in the reference x402 facilitators).
Pure code: parsing, wrapping and the default allowlist.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address

__all__ = [
    "COINBASE_SMART_WALLET_FACTORY",
    "ERC6492_MAGIC",
    "Erc6492Signature",
    "default_erc6492_factories",
    "is_erc6492",
    "unwrap_erc6492",
    "wrap_erc6492",
]

ERC6492_MAGIC = bytes.fromhex("64926492" * 8)
"""The suffix that marks a wrapped signature (ERC-6492: 0x6492 repeated 16 times)."""

COINBASE_SMART_WALLET_FACTORY = "0x0BA5ED0c6AA8c49038F819E587E2633c4A9F428a"
"""Coinbase Smart Wallet factory v1: the passkey Coinbase/Base wallets and Coinbase's agent wallet.

Source: the "Deployments" table of github.com/coinbase/smart-wallet README.md. It is
deployed through the Safe Singleton Factory, so it has this address on every chain
it is on, Base (8453) and Base Sepolia (84532) among them.
"""

_BASE_CHAIN_IDS = frozenset({8453, 84532})
_DECODED_TYPES = ["address", "bytes", "bytes"]


@dataclass(frozen=True, slots=True)
class Erc6492Signature:
    """An unwrapped ERC-6492 signature: the deployment it needs and the wallet's own signature."""

    factory: str
    factory_calldata: bytes
    signature: bytes


def is_erc6492(signature: bytes) -> bool:
    """Whether `signature` ends with the ERC-6492 magic suffix."""
    return len(signature) > len(ERC6492_MAGIC) and signature.endswith(ERC6492_MAGIC)


def unwrap_erc6492(signature: bytes) -> Erc6492Signature | None:
    """The parts of an ERC-6492 signature, or None for a signature without the suffix.

    Raises:
        ValueError: the suffix is there but what precedes it is not the ABI encoding
            of (address, bytes, bytes).
    """
    if not is_erc6492(signature):
        return None
    try:
        factory, calldata, inner = abi_decode(_DECODED_TYPES, signature[: -len(ERC6492_MAGIC)], strict=True)
    except Exception:  # eth-abi raises several decoding errors; all mean "not a wrapper"
        raise ValueError(
            "the signature ends with the ERC-6492 suffix but is not abi.encode(address factory, "
            "bytes factoryCalldata, bytes signature) before it"
        ) from None
    return Erc6492Signature(to_checksum_address(factory), bytes(calldata), bytes(inner))


def wrap_erc6492(factory: str, factory_calldata: bytes, signature: bytes) -> bytes:
    """The ERC-6492 form of a counterfactual wallet's `signature` (what a smart-wallet client sends)."""
    encoded = abi_encode(_DECODED_TYPES, [to_checksum_address(factory), factory_calldata, signature])
    return bytes(encoded) + ERC6492_MAGIC


def default_erc6492_factories(chain_id: int, extra: Iterable[str] = ()) -> frozenset[str]:
    """The factories a verifier on `chain_id` may call by default (lowercase), plus `extra`.

    Base and Base Sepolia allow the Coinbase Smart Wallet factory; other chains none.
    """
    defaults = {COINBASE_SMART_WALLET_FACTORY} if chain_id in _BASE_CHAIN_IDS else set()
    return frozenset(address.lower() for address in (*defaults, *extra))

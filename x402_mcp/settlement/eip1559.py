"""Signing an EIP-1559 (type 2) transaction by hand: RLP, keccak and one ECDSA signature."""

from __future__ import annotations

from dataclasses import dataclass

from eth_keys.datatypes import PrivateKey
from eth_utils.crypto import keccak
from hexbytes import HexBytes

__all__ = ["SignedTransaction", "sign_eip1559"]


@dataclass(frozen=True, slots=True)
class SignedTransaction:
    """A signed transaction: its raw bytes and its hash."""

    raw_transaction: bytes
    hash: HexBytes


def sign_eip1559(
    key: PrivateKey,
    *,
    chain_id: int,
    nonce: int,
    max_priority_fee: int,
    max_fee: int,
    gas: int,
    to: bytes,
    data: bytes,
) -> SignedTransaction:
    """A signed EIP-1559 (type 2) transaction sending no value and no access list.

    The same bytes as `Account.sign_transaction` (signatures are deterministic,
    RFC 6979: a test compares the two), at a quarter of its cost, which is mostly
    the validation and formatting of a general transaction dict.
    """
    fields = [_rlp_int(chain_id), _rlp_int(nonce), _rlp_int(max_priority_fee), _rlp_int(max_fee)]
    fields += [_rlp_int(gas), _rlp_bytes(to), _rlp_int(0), _rlp_bytes(data), _rlp_list(b"")]
    unsigned = b"".join(fields)
    signature = key.sign_msg_hash(keccak(b"\x02" + _rlp_list(unsigned)))
    signed = unsigned + _rlp_int(signature.v) + _rlp_int(signature.r) + _rlp_int(signature.s)
    raw = b"\x02" + _rlp_list(signed)
    return SignedTransaction(raw, HexBytes(keccak(raw)))


def _rlp_bytes(value: bytes) -> bytes:
    if len(value) == 1 and value[0] < 0x80:
        return value
    return _rlp_length(len(value), 0x80) + value


def _rlp_int(value: int) -> bytes:
    return _rlp_bytes(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _rlp_list(encoded_items: bytes) -> bytes:
    return _rlp_length(len(encoded_items), 0xC0) + encoded_items


def _rlp_length(length: int, offset: int) -> bytes:
    if length <= 55:
        return bytes([offset + length])
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([offset + 55 + len(size)]) + size

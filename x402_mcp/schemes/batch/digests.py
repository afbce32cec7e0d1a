"""The EIP-712 hashes of batch settlement: the channel id, and the voucher, claim-batch, refund
and deposit-authorization digests, computed directly (type hashes are constants, the domain
separator cached by `evm.domain_separator`), so a voucher costs two Keccaks and one recovery.

Every signature of the scheme is made under one domain: `x402 Batch Settlement`, version 1,
the chain id and the settlement contract's canonical address.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ...core.evm import domain_separator, ecrecover, keccak256, typed_digest
from ...core.wire import hex_bytes
from .constants import (
    BATCH_SETTLEMENT_ADDRESS,
    CHANNEL_CONFIG_TYPES,
    CLAIM_BATCH_TYPES,
    DOMAIN_NAME,
    DOMAIN_VERSION,
    RECEIVE_WITH_AUTHORIZATION_TYPES,
    REFUND_TYPES,
    VOUCHER_TYPES,
)
from .wire import ChannelConfig, Voucher


def _type_hash(primary: str, types: Mapping[str, Sequence[Mapping[str, str]]]) -> bytes:
    """EIP-712's `typeHash`: the primary type's `Name(type field,…)`, then every type it
    refers to, sorted by name (each of these tables holds only the types its primary uses)."""

    def encoded(name: str) -> str:
        fields = ",".join(f"{field['type']} {field['name']}" for field in types[name])
        return f"{name}({fields})"

    return keccak256(
        (encoded(primary) + "".join(encoded(name) for name in sorted(types) if name != primary)).encode()
    )


# The types are the ones wallets sign (`constants`); their hashes are computed once.
CHANNEL_CONFIG_TYPEHASH = _type_hash("ChannelConfig", CHANNEL_CONFIG_TYPES)
VOUCHER_TYPEHASH = _type_hash("Voucher", VOUCHER_TYPES)
REFUND_TYPEHASH = _type_hash("Refund", REFUND_TYPES)
CLAIM_ENTRY_TYPEHASH = _type_hash("ClaimEntry", {"ClaimEntry": CLAIM_BATCH_TYPES["ClaimEntry"]})
CLAIM_BATCH_TYPEHASH = _type_hash("ClaimBatch", CLAIM_BATCH_TYPES)
RECEIVE_AUTHORIZATION_TYPEHASH = _type_hash("ReceiveWithAuthorization", RECEIVE_WITH_AUTHORIZATION_TYPES)

_ADDRESS_PADDING = bytes(12)


@dataclass(frozen=True, slots=True)
class ClaimEntry:
    """One row of a claim batch: claim up to `total_claimed` on `channel_id` under a voucher
    whose ceiling is `max_claimable_amount`."""

    channel_id: str
    max_claimable_amount: int
    total_claimed: int


def _word(number: int) -> bytes:
    return number.to_bytes(32, "big")


def _address_word(address: str) -> bytes:
    return _ADDRESS_PADDING + bytes.fromhex(address[2:])


def _bytes32(value: str) -> bytes:
    raw = hex_bytes(value)
    if raw is None or len(raw) != 32:
        raise ValueError("a bytes32 must be 0x followed by 64 hex digits")
    return raw


def batch_domain_separator(chain_id: int) -> bytes:
    """The domain separator of every batch-settlement signature on chain `chain_id`."""
    return domain_separator(DOMAIN_NAME, DOMAIN_VERSION, chain_id, BATCH_SETTLEMENT_ADDRESS)


def channel_id(config: ChannelConfig, chain_id: int) -> str:
    """The channel id: the EIP-712 hash of `config` (0x and 64 lower-case hex digits).

    Bound to the chain and the settlement contract, so one config names different channels
    on different chains.
    """
    struct = keccak256(
        CHANNEL_CONFIG_TYPEHASH
        + _address_word(config.payer)
        + _address_word(config.payer_authorizer)
        + _address_word(config.receiver)
        + _address_word(config.receiver_authorizer)
        + _address_word(config.token)
        + _word(config.withdraw_delay)
        + _bytes32(config.salt)
    )
    return "0x" + typed_digest(batch_domain_separator(chain_id), struct).hex()


def voucher_digest(channel: str, max_claimable_amount: int, chain_id: int) -> bytes:
    """The digest a payer (or its authorizer) signs for `Voucher(channelId, maxClaimableAmount)`."""
    struct = keccak256(VOUCHER_TYPEHASH + _bytes32(channel) + _word(max_claimable_amount))
    return typed_digest(batch_domain_separator(chain_id), struct)


def refund_digest(channel: str, nonce: int, amount: int, chain_id: int) -> bytes:
    """The digest the receiver authorizer signs for `refundWithSignature`."""
    struct = keccak256(REFUND_TYPEHASH + _bytes32(channel) + _word(nonce) + _word(amount))
    return typed_digest(batch_domain_separator(chain_id), struct)


def claim_batch_digest(entries: Sequence[ClaimEntry], chain_id: int) -> bytes:
    """The digest the receiver authorizer signs for `claimWithSignature` over all `entries`."""
    rows = b"".join(
        keccak256(
            CLAIM_ENTRY_TYPEHASH
            + _bytes32(entry.channel_id)
            + _word(entry.max_claimable_amount)
            + _word(entry.total_claimed)
        )
        for entry in entries
    )
    struct = keccak256(CLAIM_BATCH_TYPEHASH + keccak256(rows))
    return typed_digest(batch_domain_separator(chain_id), struct)


def deposit_nonce(channel: str, salt: str) -> str:
    """The ERC-3009 nonce of a deposit: `keccak256(abi.encode(bytes32 channelId, uint256 salt))`.

    The collector derives it the same way, so a deposit authorization is bound to its channel.
    """
    return "0x" + keccak256(_bytes32(channel) + _bytes32(salt)).hex()


def receive_authorization_digest(
    *,
    payer: str,
    collector: str,
    value: int,
    valid_after: int,
    valid_before: int,
    nonce: str,
    token_name: str,
    token_version: str,
    chain_id: int,
    token: str,
) -> bytes:
    """The digest a payer signs for the token's `ReceiveWithAuthorization` to `collector`."""
    struct = keccak256(
        RECEIVE_AUTHORIZATION_TYPEHASH
        + _address_word(payer)
        + _address_word(collector)
        + _word(value)
        + _word(valid_after)
        + _word(valid_before)
        + _bytes32(nonce)
    )
    return typed_digest(domain_separator(token_name, token_version, chain_id, token), struct)


def recover(digest: bytes, signature: str) -> bytes | None:
    """The 20-byte ECDSA signer of `digest`, or None (not a 65-byte signature, or no signer)."""
    raw = hex_bytes(signature)
    return None if raw is None else ecrecover(digest, raw)


def voucher_signer(voucher: Voucher, chain_id: int) -> bytes | None:
    """The 20-byte ECDSA signer of `voucher`, or None when its signature recovers to nobody."""
    digest = voucher_digest(voucher.channel_id, int(voucher.max_claimable_amount), chain_id)
    return recover(digest, voucher.signature)

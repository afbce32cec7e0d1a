"""EIP-3009 token calls, logs and revert data, encoded and decoded without a node.

Encoding calldata locally (instead of through a web3 `Contract`) keeps settlement
free of per-call ABI lookups and avoids the overload resolution that
`transferWithAuthorization`'s two forms would otherwise need.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from ...core.evm import split_signature
from ...core.wire import ExactPayload

__all__ = [
    "AUTHORIZATION_CANCELED_TOPIC",
    "AUTHORIZATION_USED_TOPIC",
    "TRANSFER_TOPIC",
    "authorization_state_calldata",
    "authorization_topics",
    "balance_of_calldata",
    "decode_bool",
    "decode_uint",
    "is_vrs_signature",
    "revert_reason",
    "transfer_logged",
    "transfer_with_authorization_calldata",
]

TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)")
AUTHORIZATION_USED_TOPIC = keccak(text="AuthorizationUsed(address,bytes32)")
AUTHORIZATION_CANCELED_TOPIC = keccak(text="AuthorizationCanceled(address,bytes32)")

_AUTH_TYPES = ["address", "address", "uint256", "uint256", "uint256", "bytes32"]
_TWA_VRS = function_signature_to_4byte_selector(
    "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)"
)
_TWA_BYTES = function_signature_to_4byte_selector(
    "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)"
)
_AUTHORIZATION_STATE = function_signature_to_4byte_selector("authorizationState(address,bytes32)")
_BALANCE_OF = function_signature_to_4byte_selector("balanceOf(address)")
_ERROR_STRING = function_signature_to_4byte_selector("Error(string)")


def is_vrs_signature(payload: ExactPayload) -> bool:
    """True for a plain 65-byte ECDSA signature, settled through the `(v, r, s)` form."""
    return len(payload.signature) == 2 + 65 * 2


def transfer_with_authorization_calldata(payload: ExactPayload) -> bytes:
    """Calldata for `transferWithAuthorization`, as the official facilitator chooses its form.

    A 65-byte signature uses the `(…, uint8 v, bytes32 r, bytes32 s)` overload, which
    every USDC deployment has; anything else (EIP-1271 smart wallets) uses the
    `(…, bytes signature)` overload.
    """
    auth = payload.authorization
    head: list[Any] = [
        to_checksum_address(auth.from_),
        to_checksum_address(auth.to),
        int(auth.value),
        int(auth.valid_after),
        int(auth.valid_before),
        bytes.fromhex(auth.nonce[2:]),
    ]
    if is_vrs_signature(payload):
        v, r, s = split_signature(payload.signature)
        return bytes(_TWA_VRS + abi_encode([*_AUTH_TYPES, "uint8", "bytes32", "bytes32"], [*head, v, r, s]))
    signature = bytes.fromhex(payload.signature[2:])
    return bytes(_TWA_BYTES + abi_encode([*_AUTH_TYPES, "bytes"], [*head, signature]))


def authorization_state_calldata(authorizer: str, nonce: str) -> bytes:
    return bytes(
        _AUTHORIZATION_STATE
        + abi_encode(["address", "bytes32"], [to_checksum_address(authorizer), bytes.fromhex(nonce[2:])])
    )


def balance_of_calldata(owner: str) -> bytes:
    return bytes(_BALANCE_OF + abi_encode(["address"], [to_checksum_address(owner)]))


def decode_bool(data: bytes) -> bool:
    return bool(abi_decode(["bool"], data)[0])


def decode_uint(data: bytes) -> int:
    return int(abi_decode(["uint256"], data)[0])


def revert_reason(data: bytes) -> str | None:
    """The message of a Solidity `require`/`revert("…")`, or None for any other revert data."""
    if data[:4] != _ERROR_STRING:
        return None
    try:
        return str(abi_decode(["string"], data[4:])[0])
    except Exception:  # eth-abi raises several decoding errors; all mean "not an Error(string)"
        return None


def _topic_address(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


def authorization_topics(event_topic: bytes, authorizer: str, nonce: str) -> list[str]:
    """`eth_getLogs` topics selecting `AuthorizationUsed`/`Canceled` of one (authorizer, nonce)."""
    topics = (event_topic, _topic_address(authorizer.lower()), bytes.fromhex(nonce[2:]))
    return ["0x" + topic.hex() for topic in topics]


def transfer_logged(
    logs: Iterable[Mapping[str, Any]], *, token: str, sender: str, recipient: str, value: int
) -> bool:
    """Whether `logs` (a receipt's) hold `Transfer(sender, recipient, value)` emitted by `token`."""
    wanted_topics = [TRANSFER_TOPIC, _topic_address(sender.lower()), _topic_address(recipient.lower())]
    for log in logs:
        if str(log["address"]).lower() != token.lower():
            continue
        if [bytes(topic) for topic in log["topics"]] != wanted_topics:
            continue
        if int.from_bytes(bytes(log["data"]), "big") == value:
            return True
    return False

"""EIP-712 / EIP-3009 signing and recovery, with no chain access."""

from __future__ import annotations

import os
import time
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from .wire import ExactAuthorization, ExactPayload, PaymentRequirements

AUTHORIZATION_TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "TransferWithAuthorization": [
        {"name": "from", "type": "address"},
        {"name": "to", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "validAfter", "type": "uint256"},
        {"name": "validBefore", "type": "uint256"},
        {"name": "nonce", "type": "bytes32"},
    ],
}


def chain_id_of(network: str) -> int:
    """`eip155:84532` to 84532; raises ValueError for a non-EVM network."""
    namespace, _, reference = network.partition(":")
    if namespace != "eip155" or not reference.isdigit():
        raise ValueError(f"{network!r} is not an EVM (eip155) network")
    return int(reference)


def typed_data(
    authorization: ExactAuthorization, *, name: str, version: str, chain_id: int, token: str
) -> dict[str, Any]:
    """The full EIP-712 message a wallet signs for `eth_signTypedData_v4`."""
    return {
        "types": AUTHORIZATION_TYPES,
        "primaryType": "TransferWithAuthorization",
        "domain": {
            "name": name,
            "version": version,
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(token),
        },
        "message": {
            "from": to_checksum_address(authorization.from_),
            "to": to_checksum_address(authorization.to),
            "value": int(authorization.value),
            "validAfter": int(authorization.valid_after),
            "validBefore": int(authorization.valid_before),
            "nonce": bytes.fromhex(authorization.nonce[2:]),
        },
    }


def requirement_typed_data(
    authorization: ExactAuthorization, requirements: PaymentRequirements
) -> dict[str, Any]:
    """`typed_data` with the domain taken from a requirement's `extra.name`/`extra.version`."""
    return typed_data(
        authorization,
        name=str(requirements.extra.get("name", "")),
        version=str(requirements.extra.get("version", "")),
        chain_id=chain_id_of(requirements.network),
        token=requirements.asset,
    )


def recover_payer(payload: ExactPayload, requirements: PaymentRequirements) -> str | None:
    """The address that signed the authorization, or None when the signature is unusable."""
    message = encode_typed_data(full_message=requirement_typed_data(payload.authorization, requirements))
    try:
        return str(Account.recover_message(message, signature=bytes.fromhex(payload.signature[2:])))
    except Exception:  # eth-account raises several types for bad bytes; all mean "no signer"
        return None


def new_nonce() -> str:
    return "0x" + os.urandom(32).hex()


def sign_authorization(
    account: LocalAccount,
    requirements: PaymentRequirements,
    *,
    now: int | None = None,
    valid_after: int | None = None,
    valid_before: int | None = None,
    value: int | None = None,
    nonce: str | None = None,
) -> ExactPayload:
    """Sign an exact-EVM payment for `requirements`, the way x402 clients do.

    The window defaults to `[now - 600, now + maxTimeoutSeconds]`. The keyword
    overrides exist so tests can build deliberately wrong payments.
    """
    now = int(time.time()) if now is None else now
    authorization = ExactAuthorization(
        from_=account.address,
        to=requirements.pay_to,
        value=str(int(requirements.amount) if value is None else value),
        valid_after=str(now - 600 if valid_after is None else valid_after),
        valid_before=str(now + requirements.max_timeout_seconds if valid_before is None else valid_before),
        nonce=nonce or new_nonce(),
    )
    signed = account.sign_message(
        encode_typed_data(full_message=requirement_typed_data(authorization, requirements))
    )
    return ExactPayload(signature="0x" + bytes(signed.signature).hex(), authorization=authorization)


def split_signature(signature: str) -> tuple[int, bytes, bytes]:
    """65-byte r‖s‖v to (v, r, s), with v normalised to 27/28 as USDC expects."""
    raw = bytes.fromhex(signature[2:])
    if len(raw) != 65:
        raise ValueError("not a 65-byte ECDSA signature")
    v = raw[64]
    return (v + 27 if v < 27 else v), raw[:32], raw[32:64]

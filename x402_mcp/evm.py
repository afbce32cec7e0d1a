"""EIP-712 / EIP-3009 signing and recovery, with no chain access."""

from __future__ import annotations

import os
import time
from typing import Any, TypedDict, Unpack

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from .text import shown
from .wire import ExactAuthorization, ExactPayload, PaymentRequirements, hex_bytes, is_nonce, parse_uint

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


# secp256k1 order / 2: USDC (like EIP-2) refuses the high-s twin of every signature.
HALF_CURVE_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
ECDSA_SIGNATURE_BYTES = 65


def chain_id_of(network: str) -> int:
    """`eip155:84532` to 84532; raises ValueError for a non-EVM network."""
    namespace, _, reference = network.partition(":")
    try:
        if namespace != "eip155":
            raise ValueError("not eip155")
        return parse_uint(reference, "the chain id")
    except ValueError:
        raise ValueError(f"{shown(network)} is not an EVM (eip155:<chain id>) network") from None


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
            "value": parse_uint(authorization.value, "authorization.value"),
            "validAfter": parse_uint(authorization.valid_after, "authorization.validAfter"),
            "validBefore": parse_uint(authorization.valid_before, "authorization.validBefore"),
            "nonce": nonce_bytes(authorization.nonce),
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


def nonce_bytes(nonce: object) -> bytes:
    """An EIP-3009 nonce (`0x` and 64 hex digits) as its 32 bytes.

    Raises:
        ValueError: for anything else (`bytes.fromhex` alone would skip spaces).
    """
    if not is_nonce(nonce):
        raise ValueError("the nonce must be 0x followed by 64 hex digits")
    return bytes.fromhex(str(nonce)[2:])


def signature_problem(signature: object) -> str | None:
    """What is wrong with a signature's form, checked without the chain; None when nothing is.

    Not hex (or empty) is always wrong. A 65-byte signature is ECDSA and must
    follow USDC's rules: v in {27, 28} (0 and 1 are normalised) and the low-s
    form. Any other length can only be a contract wallet's (EIP-1271), which
    only the chain can judge.
    """
    raw = hex_bytes(signature)
    if raw is None:
        return "The signature must be 0x followed by an even, non-zero number of hex digits."
    if len(raw) != ECDSA_SIGNATURE_BYTES:
        return None
    v, _, s = split_signature(str(signature))
    if v not in (27, 28):
        return f"The signature's recovery byte v={v} is invalid; it must be 27 or 28."
    if int.from_bytes(s, "big") > HALF_CURVE_ORDER:
        return (
            "The signature uses the high-s form, which USDC rejects as malleable; "
            "sign again with a standard wallet."
        )
    return None


def recover_payer(payload: ExactPayload, requirements: PaymentRequirements) -> str | None:
    """The address that signed the authorization by ECDSA, or None when there is none.

    Never raises for a malformed signature or authorization (not hex, wrong length,
    bad recovery byte, fields out of range): all of them mean "no signer".
    """
    raw = hex_bytes(payload.signature)
    if raw is None or len(raw) != ECDSA_SIGNATURE_BYTES:
        return None
    try:
        message = encode_typed_data(full_message=requirement_typed_data(payload.authorization, requirements))
        return str(Account.recover_message(message, signature=raw))
    except Exception:  # eth-account and eth-keys raise several types for bad input; all mean "no signer"
        return None


def new_nonce() -> str:
    return "0x" + os.urandom(32).hex()


def new_authorization(
    payer: str,
    requirements: PaymentRequirements,
    *,
    now: int | None = None,
    valid_after: int | None = None,
    valid_before: int | None = None,
    value: int | None = None,
    nonce: str | None = None,
) -> ExactAuthorization:
    """An unsigned authorization from `payer` for `requirements`, as x402 clients fill it.

    The window defaults to `[now - 600, now + maxTimeoutSeconds]`. The keyword
    overrides exist so tests can build deliberately wrong payments.
    """
    now = int(time.time()) if now is None else now
    return ExactAuthorization(
        from_=payer,
        to=requirements.pay_to,
        value=str(parse_uint(requirements.amount, "the amount") if value is None else value),
        valid_after=str(now - 600 if valid_after is None else valid_after),
        valid_before=str(now + requirements.max_timeout_seconds if valid_before is None else valid_before),
        nonce=nonce or new_nonce(),
    )


class AuthorizationOverrides(TypedDict, total=False):
    """`new_authorization`'s optional fields, for deliberately wrong payments in tests."""

    now: int | None
    valid_after: int | None
    valid_before: int | None
    value: int | None
    nonce: str | None


def sign_authorization(
    account: LocalAccount,
    requirements: PaymentRequirements,
    *,
    payer: str | None = None,
    **overrides: Unpack[AuthorizationOverrides],
) -> ExactPayload:
    """Sign an exact-EVM payment for `requirements` with `account`'s key, the way x402 clients do.

    `payer` (by default the account itself) is the authorization's `from`: a smart
    wallet whose owner `account` is signs with its owner's key over the same
    EIP-712 message, and the wallet vouches for that signature through EIP-1271.
    The other keywords are `new_authorization`'s.
    """
    authorization = new_authorization(account.address if payer is None else payer, requirements, **overrides)
    signed = account.sign_message(
        encode_typed_data(full_message=requirement_typed_data(authorization, requirements))
    )
    return ExactPayload(signature="0x" + bytes(signed.signature).hex(), authorization=authorization)


def split_signature(signature: str) -> tuple[int, bytes, bytes]:
    """65-byte r‖s‖v to (v, r, s), with v normalised to 27/28 as USDC expects."""
    raw = hex_bytes(signature)
    if raw is None or len(raw) != ECDSA_SIGNATURE_BYTES:
        raise ValueError("not a 65-byte ECDSA signature")
    v = raw[64]
    return (v + 27 if v < 27 else v), raw[:32], raw[32:64]

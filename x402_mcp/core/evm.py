"""EIP-712 / EIP-3009 signing and recovery, with no chain access."""

from __future__ import annotations

import os
import time
from functools import lru_cache
from typing import Any, TypedDict, Unpack

from coincurve import PublicKey
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

try:  # safe-pysha3 (installed with the embedded dev chain) hashes about 5x faster than pycryptodome
    from eth_hash.backends.pysha3 import keccak256 as keccak256
except ImportError:  # pragma: no cover - the same Keccak-256, only slower
    from eth_hash.backends.pycryptodome import keccak256 as keccak256

from .text import shown
from .wire import (
    UINT256_LIMIT,
    ExactAuthorization,
    ExactPayload,
    PaymentRequirements,
    hex_bytes,
    is_address,
    is_nonce,
    parse_uint,
)

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

# The two EIP-712 type hashes are constants: hashing the type strings once is what lets a
# payment's digest cost two Keccaks instead of eth-account's generic walk over the types.
DOMAIN_TYPEHASH = keccak256(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
AUTHORIZATION_TYPEHASH = keccak256(
    b"TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,"
    b"uint256 validBefore,bytes32 nonce)"
)
_EIP712_PREFIX = b"\x19\x01"
_ADDRESS_PADDING = bytes(12)
_DOMAIN_CACHE_SIZE = 256
_RECOVERY_CACHE_SIZE = 4096


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


def domain_separator(name: str, version: str, chain_id: int, token: str) -> bytes:
    """The EIP-712 domain separator of a token (`token`: 0x and 40 hex digits, any case).

    Raises:
        ValueError: for a token that is not such an address, a chain id outside uint256,
            or a name or version that is not valid Unicode (a lone surrogate).
    """
    if not is_address(token) or not 0 <= chain_id < UINT256_LIMIT:
        raise ValueError("the EIP-712 domain needs a token address and a uint256 chain id")
    return _domain_separator(name, version, chain_id, token.lower())


@lru_cache(maxsize=_DOMAIN_CACHE_SIZE)
def _domain_separator(name: str, version: str, chain_id: int, token: str) -> bytes:
    # Bounded: a server pays on a handful of (token, chain) domains, so this stays full of them.
    return keccak256(
        DOMAIN_TYPEHASH
        + keccak256(name.encode("utf-8"))
        + keccak256(version.encode("utf-8"))
        + chain_id.to_bytes(32, "big")
        + _ADDRESS_PADDING
        + bytes.fromhex(token[2:])
    )


def authorization_digest(authorization: ExactAuthorization, requirements: PaymentRequirements) -> bytes:
    """The 32-byte EIP-712 digest a wallet signs for `authorization` under `requirements`' domain.

    Exactly `encode_typed_data(requirement_typed_data(...))` hashed as EIP-191 version 1:
    fields in their wire form are encoded here directly (one Keccak for the struct, one
    for the digest, the domain separator cached); anything else (an address without its
    0x, a hand-built value) goes through eth-account, so both always agree.

    Raises:
        ValueError: for a field eth-account cannot encode either (eth-account's own
            errors are re-raised as ValueError).
    """
    digest = _fast_digest(authorization, requirements)
    if digest is not None:
        return digest
    try:
        message = encode_typed_data(full_message=requirement_typed_data(authorization, requirements))
    except Exception as exc:  # eth-account and eth-abi raise several types for bad input
        raise ValueError(f"the authorization cannot be encoded as EIP-712: {shown(str(exc))}") from None
    return keccak256(b"\x19" + message.version + message.header + message.body)


def _fast_digest(authorization: ExactAuthorization, requirements: PaymentRequirements) -> bytes | None:
    """`authorization_digest` for fields in their wire form; None for anything else."""
    try:
        token, nonce = requirements.asset, authorization.nonce
        payer, payee = authorization.from_, authorization.to
        if not (is_address(token) and is_address(payer) and is_address(payee) and is_nonce(nonce)):
            return None
        extra = requirements.extra
        separator = _domain_separator(
            str(extra.get("name", "")),
            str(extra.get("version", "")),
            chain_id_of(requirements.network),
            token.lower(),
        )
        numbers = (
            parse_uint(authorization.value).to_bytes(32, "big")
            + parse_uint(authorization.valid_after).to_bytes(32, "big")
            + parse_uint(authorization.valid_before).to_bytes(32, "big")
        )
    except Exception:  # a lone surrogate, a hand-built model: eth-account's path gives the answer
        return None
    struct = keccak256(
        AUTHORIZATION_TYPEHASH
        + _ADDRESS_PADDING
        + bytes.fromhex(payer[2:])
        + _ADDRESS_PADDING
        + bytes.fromhex(payee[2:])
        + numbers
        + bytes.fromhex(nonce[2:])
    )
    return typed_digest(separator, struct)


def typed_digest(separator: bytes, struct_hash: bytes) -> bytes:
    """EIP-712's signed digest, `keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(message))`."""
    return keccak256(_EIP712_PREFIX + separator + struct_hash)


def ecrecover(digest: bytes, signature: bytes) -> bytes | None:
    """The 20-byte address whose key made the 65-byte `signature` (r‖s‖v) over `digest`; None if none.

    v is read as eth-account reads it: 0/1, 27/28, or an EIP-155 value of 35 and up.
    """
    if len(digest) != 32 or len(signature) != ECDSA_SIGNATURE_BYTES:
        return None
    return _ecrecover(bytes(digest), bytes(signature))


# The same (digest, signature) is recovered by the pure match, then by the backend's verify
# and its settle: the address is a pure function of these 97 bytes, and the digest covers
# every signed field, so the cache can only ever answer what recovery would. Bounded, so a
# flood of distinct signatures costs memory once, not without end.
@lru_cache(maxsize=_RECOVERY_CACHE_SIZE)
def _ecrecover(digest: bytes, signature: bytes) -> bytes | None:
    v = signature[64]
    if v in (0, 1):
        parity = v
    elif v in (27, 28):
        parity = v - 27
    elif v >= 35:  # EIP-155 form: 35 + 2 * chain id + parity
        parity = (v - 35) % 2
    else:
        return None
    try:
        point = PublicKey.from_signature_and_message(signature[:64] + bytes((parity,)), digest, hasher=None)
    except ValueError:  # r or s out of range, or no point: no signer
        return None
    return keccak256(point.format(compressed=False)[1:])[12:]


def checksum_address(address: bytes) -> str:
    """EIP-55 form of a 20-byte address."""
    digits = address.hex()
    mask = keccak256(digits.encode("ascii")).hex()
    return "0x" + "".join(
        char.upper() if char > "9" and mask[index] >= "8" else char for index, char in enumerate(digits)
    )


def recover_signer(payload: ExactPayload, requirements: PaymentRequirements) -> bytes | None:
    """The 20-byte address that signed the authorization by ECDSA, or None when there is none.

    Never raises for a malformed signature or authorization (not hex, wrong length,
    bad recovery byte, fields out of range): all of them mean "no signer".
    """
    raw = hex_bytes(payload.signature)
    if raw is None or len(raw) != ECDSA_SIGNATURE_BYTES:
        return None
    try:
        digest = authorization_digest(payload.authorization, requirements)
    except ValueError:
        return None
    return _ecrecover(digest, raw)


def recover_payer(payload: ExactPayload, requirements: PaymentRequirements) -> str | None:
    """`recover_signer` as a checksummed address."""
    signer = recover_signer(payload, requirements)
    return None if signer is None else checksum_address(signer)


def signed_by_payer(payload: ExactPayload, requirements: PaymentRequirements) -> bool:
    """Whether the signature recovers, by ECDSA, to the authorization's own `from`."""
    signer = recover_signer(payload, requirements)
    if signer is None:
        return False
    payer = payload.authorization.from_
    return isinstance(payer, str) and "0x" + signer.hex() == payer.lower()


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

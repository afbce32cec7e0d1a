"""What makes a payment one payment: the key under which the ledger claims it once.

A signed payment can be presented for any number of payment requests (x402 v1
payloads name none; a v2 payload's `paymentRequestId` is not covered by the
signature). The ledger binds each payment to the first request that claims it
(`Ledger.claim_payment`), so one authorization pays for one request only,
whichever settlement order or entry point (the gate, the page) sees it.

- EVM (exact, EIP-3009): the network, the payer and the authorization's nonce.
  The token itself accepts a (payer, nonce) once, so this is the key the chain
  would enforce, only enforced before anything runs instead of at settlement.
- Solana: the network and a digest of the message the payer signed. The
  signature slots are left out, since the fee payer's slot is filled (or
  could be altered) without changing which transfer it is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from .states import PaymentKey
from .wire import PaymentRequirements, ReceivedPayment, SchemePaymentPayload, SvmPaymentPayload

__all__ = ["payment_key"]

_SIGNATURE_BYTES = 64


def payment_key(payload: ReceivedPayment, requirements: PaymentRequirements) -> PaymentKey:
    """The key of `payload`, once it matched `requirements` (whose network it pays on)."""
    if isinstance(payload, SvmPaymentPayload):
        return PaymentKey(
            requirements.network, "", f"sha256:{_signed_message_digest(payload.payload.transaction)}"
        )
    if isinstance(payload, SchemePaymentPayload):  # its scheme keys it (`Matched.key`); this is a fallback
        return PaymentKey(
            requirements.network, "", f"sha256:{hashlib.sha256(payload.to_json().encode()).hexdigest()}"
        )
    authorization = payload.payload.authorization
    return PaymentKey(requirements.network, authorization.from_.lower(), authorization.nonce.lower())


def _signed_message_digest(transaction: str) -> str:
    """SHA-256 of the message of a serialized Solana transaction (what every signer signed).

    Layout: a compact-u16 count of signatures, that many 64-byte signatures,
    then the message. A transaction too short for its own count is digested
    whole (the facilitator will refuse it anyway).
    """
    try:
        raw = base64.b64decode(transaction, validate=True)
    except binascii.Error:
        raw = transaction.encode()
    count, offset = _compact_u16(raw)
    start = offset + count * _SIGNATURE_BYTES
    message = raw[start:] if offset and start < len(raw) else raw
    return hashlib.sha256(message).hexdigest()


def _compact_u16(raw: bytes) -> tuple[int, int]:
    """A compact-u16 at the start of `raw` and how many bytes it took (0: malformed)."""
    value = 0
    for index in range(min(3, len(raw))):
        byte = raw[index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value, index + 1
    return 0, 0

"""The key under which a payment is claimed once: what makes two payloads one payment."""

from __future__ import annotations

import base64
import hashlib

from eth_account import Account

from x402_mcp.core.claims import payment_key
from x402_mcp.core.evm import sign_authorization
from x402_mcp.core.wire import (
    PaymentPayload,
    PaymentPayloadV1,
    PaymentRequirements,
    SvmExactPayload,
    SvmPaymentPayload,
)

PAYER = Account.create()
OURS = PaymentRequirements(
    scheme="exact",
    network="eip155:84532",
    amount="50000",
    asset="0x036CbD53842c5426634e7929541eC2318f3dCF7e",
    pay_to=Account.create().address,
    max_timeout_seconds=600,
    extra={"name": "USDC", "version": "2", "paymentRequestId": "pr_a"},
)
SOLANA = OURS.model_copy(
    update={
        "network": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1",
        "asset": "4zMMC9srt5Ri5X14GAgXhaHii3GnPAEERYPJgZJDncDU",
        "pay_to": "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin",
        "extra": {"feePayer": "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"},
    }
)


def test_an_evm_payment_is_its_network_payer_and_nonce_lower_cased_whatever_request_it_names() -> None:
    signed = sign_authorization(PAYER, OURS, nonce="0x" + "AB" * 32)
    v2 = PaymentPayload(accepted=OURS, payload=signed)
    elsewhere = PaymentPayload(
        accepted=OURS.model_copy(update={"extra": {**OURS.extra, "paymentRequestId": "pr_b"}}), payload=signed
    )
    v1 = PaymentPayloadV1(scheme="exact", network="base-sepolia", payload=signed)
    key = payment_key(v2, OURS)
    assert (key.network, key.payer, key.nonce) == ("eip155:84532", PAYER.address.lower(), "0x" + "ab" * 32)
    assert payment_key(elsewhere, OURS) == key == payment_key(v1, OURS)
    assert payment_key(PaymentPayload(accepted=OURS, payload=sign_authorization(PAYER, OURS)), OURS) != key


def transaction(signatures: list[bytes], message: bytes) -> SvmPaymentPayload:
    raw = bytes([len(signatures)]) + b"".join(signatures) + message
    return SvmPaymentPayload(
        accepted=SOLANA, payload=SvmExactPayload(transaction=base64.b64encode(raw).decode())
    )


def test_a_solana_payment_is_the_message_its_payer_signed_whatever_fills_the_other_slots() -> None:
    message = b"\x01\x01\x00" + bytes(range(200))
    unsigned_fee_payer = transaction([bytes(64), b"\x07" * 64], message)
    altered_slot = transaction([b"\xff" * 64, b"\x07" * 64], message)
    key = payment_key(unsigned_fee_payer, SOLANA)
    assert key.network == SOLANA.network and key.payer == ""
    assert key.nonce == f"sha256:{hashlib.sha256(message).hexdigest()}"
    assert payment_key(altered_slot, SOLANA) == key
    assert payment_key(transaction([bytes(64), b"\x07" * 64], message + b"\x00"), SOLANA) != key


def test_a_solana_transaction_shorter_than_its_own_signature_count_is_digested_whole() -> None:
    raw = b"\x05" + b"\x01" * 10
    payload = SvmPaymentPayload(
        accepted=SOLANA, payload=SvmExactPayload(transaction=base64.b64encode(raw).decode())
    )
    assert payment_key(payload, SOLANA).nonce == f"sha256:{hashlib.sha256(raw).hexdigest()}"

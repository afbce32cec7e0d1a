"""The pure checks that run before any backend: each wrong payment is named precisely."""

import time

import pytest
from eth_account import Account

from x402_mcp.core.erc6492 import wrap_erc6492
from x402_mcp.core.evm import sign_authorization
from x402_mcp.core.networks import BASE_SEPOLIA
from x402_mcp.core.wire import PaymentPayload, PaymentPayloadV1, PaymentRequirements
from x402_mcp.errors import (
    InvalidSignature,
    MalformedPayment,
    PaymentError,
    PaymentExpired,
    PaymentMismatch,
    PaymentNotYetValid,
)
from x402_mcp.schemes.exact.matching import Match, match_payment, referenced_request_id

PAYER = Account.create()
PAYEE = Account.create().address
NOW = int(time.time())
OURS = PaymentRequirements(
    scheme="exact",
    network="eip155:84532",
    amount="50000",
    asset="0x036CbD53842c5426634e7929541eC2318f3dCF7e",
    pay_to=PAYEE,
    max_timeout_seconds=600,
    extra={"name": "USDC", "version": "2", "paymentRequestId": "pr_x"},
)


def test_a_good_payment_matches_and_names_its_payer() -> None:
    payload = PaymentPayload(accepted=OURS, payload=sign_authorization(PAYER, OURS, now=NOW))
    assert match_payment(payload, OURS, BASE_SEPOLIA, now=NOW) == Match(PAYER.address, signature_checked=True)
    assert referenced_request_id(payload) == "pr_x"


def test_v1_payloads_match_by_network_name() -> None:
    payload = PaymentPayloadV1(
        scheme="exact", network="base-sepolia", payload=sign_authorization(PAYER, OURS, now=NOW)
    )
    assert match_payment(payload, OURS, BASE_SEPOLIA, now=NOW).payer == PAYER.address
    assert referenced_request_id(payload) is None


@pytest.mark.parametrize(
    ("accepted_changes", "sign_changes", "error", "message"),
    [
        ({"scheme": "upto"}, {}, PaymentMismatch, "scheme 'upto'"),
        ({"network": "eip155:8453"}, {}, PaymentMismatch, "network eip155:8453"),
        ({"asset": PAYEE}, {}, PaymentMismatch, "in asset"),
        # The echoed terms must be ours even when the signed authorization is right.
        ({"pay_to": "0x" + "12" * 20}, {}, PaymentMismatch, "accepted.payTo is 0x1212"),
        ({"pay_to": "junk"}, {}, PaymentMismatch, "accepted.payTo is junk"),
        ({"amount": "1"}, {}, PaymentMismatch, "accepted.amount is 1, but the price is 50000"),
        ({}, {"value": 49_999}, PaymentMismatch, r"the price is \$0\.05"),
        ({}, {"valid_before": NOW + 3}, PaymentExpired, "expired"),
        ({}, {"valid_after": NOW + 60}, PaymentNotYetValid, "not valid until"),
    ],
)
def test_mismatches_are_named(
    accepted_changes: dict[str, object], sign_changes: dict[str, int], error: type[PaymentError], message: str
) -> None:
    accepted = OURS.model_copy(update=accepted_changes)
    payload = PaymentPayload(
        accepted=accepted, payload=sign_authorization(PAYER, OURS, now=NOW, **sign_changes)
    )
    with pytest.raises(error, match=message):
        match_payment(payload, OURS, BASE_SEPOLIA, now=NOW)


def test_a_wrong_recipient_is_named() -> None:
    elsewhere = OURS.model_copy(update={"pay_to": PAYER.address})
    payload = PaymentPayload(accepted=OURS, payload=sign_authorization(PAYER, elsewhere, now=NOW))
    with pytest.raises(PaymentMismatch, match="payee is"):
        match_payment(payload, OURS, BASE_SEPOLIA, now=NOW)


def test_a_signature_that_does_not_recover_to_the_payer_is_left_to_the_chain() -> None:
    # `from` may be a contract wallet vouching for its owner's key (EIP-1271): pure code
    # cannot tell that from a forgery, so it says the signature is unchecked.
    forged = sign_authorization(Account.create(), OURS, now=NOW)
    forged.authorization.from_ = PAYER.address
    matched = match_payment(PaymentPayload(accepted=OURS, payload=forged), OURS, BASE_SEPOLIA, now=NOW)
    assert matched == Match(PAYER.address, signature_checked=False)

    other_domain = OURS.model_copy(update={"extra": {"name": "USD Coin", "version": "2"}})
    signed_elsewhere = sign_authorization(PAYER, other_domain, now=NOW)
    payload = PaymentPayload(accepted=OURS, payload=signed_elsewhere)
    assert not match_payment(payload, OURS, BASE_SEPOLIA, now=NOW).signature_checked


@pytest.mark.parametrize("shape", ["long (EIP-1271)", "ERC-6492 wrapped"])
def test_smart_wallet_signatures_are_left_to_the_chain(shape: str) -> None:
    exact = sign_authorization(PAYER, OURS, now=NOW)
    inner = bytes.fromhex(exact.signature[2:]) + b"\x00" * 31
    raw = inner if shape.startswith("long") else wrap_erc6492(PAYEE, b"\x01\x02", inner)
    payload = PaymentPayload(accepted=OURS, payload=exact.model_copy(update={"signature": "0x" + raw.hex()}))
    assert match_payment(payload, OURS, BASE_SEPOLIA, now=NOW) == Match(
        PAYER.address, signature_checked=False
    )


def test_every_other_field_is_still_checked_for_an_unchecked_signature() -> None:
    exact = sign_authorization(PAYER, OURS, now=NOW, value=49_999)
    long = exact.model_copy(update={"signature": "0x" + "ab" * 100})
    with pytest.raises(PaymentMismatch, match="price"):
        match_payment(PaymentPayload(accepted=OURS, payload=long), OURS, BASE_SEPOLIA, now=NOW)


def _signed(**authorization_changes: object) -> PaymentPayload:
    """A good payment whose authorization is then changed without validation (as code can)."""
    exact = sign_authorization(PAYER, OURS, now=NOW)
    changed = exact.model_copy(
        update={"authorization": exact.authorization.model_copy(update=authorization_changes)}
    )
    return PaymentPayload(accepted=OURS, payload=exact).model_copy(update={"payload": changed})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"value": "５００００"}, "value must be a string of ASCII decimal digits"),
        ({"value": "050000"}, "value must be a string of ASCII decimal digits"),
        ({"value": "²"}, "value must be"),
        ({"value": 50000}, "value must be"),
        ({"valid_before": str(2**256)}, "validBefore must be below 2\\*\\*256"),
        ({"valid_after": "-1"}, "validAfter must be"),
        ({"from_": "0xnot-an-address"}, "'from' is not an address"),
        ({"nonce": "0x" + "ab" * 31 + "a_"}, "nonce must be 0x and 64 hex digits"),
    ],
)
def test_fields_that_bypassed_the_wire_are_still_refused_by_name(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(MalformedPayment, match=message):
        match_payment(_signed(**changes), OURS, BASE_SEPOLIA, now=NOW)


@pytest.mark.parametrize(("v", "message"), [(0x1D, "v=29"), (0x00 + 5, "v=32")])
def test_an_ecdsa_signature_with_a_bad_recovery_byte_is_named(v: int, message: str) -> None:
    payload = PaymentPayload(accepted=OURS, payload=sign_authorization(PAYER, OURS, now=NOW))
    bad_v = payload.payload.model_copy(update={"signature": payload.payload.signature[:-2] + f"{v:02x}"})
    with pytest.raises(InvalidSignature, match=message):
        match_payment(payload.model_copy(update={"payload": bad_v}), OURS, BASE_SEPOLIA, now=NOW)


def test_outside_text_in_a_mismatch_is_neutralised() -> None:
    hostile = "eip155:1\u202e" + "9" * 500
    payload = PaymentPayload(
        accepted=OURS.model_copy(update={"network": hostile}),
        payload=sign_authorization(PAYER, OURS, now=NOW),
    )
    with pytest.raises(PaymentMismatch) as refused:
        match_payment(payload, OURS, BASE_SEPOLIA, now=NOW)
    assert "\u202e" not in str(refused.value) and "\\u202e" in str(refused.value)
    assert len(str(refused.value)) < 300

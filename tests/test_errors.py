"""Backend refusals become the specific PaymentError, with outside text made safe to show."""

from __future__ import annotations

import pytest

from x402_mcp.errors import InvalidSignature, PaymentMismatch, PaymentRejected, payment_error_for


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("invalid_exact_evm_payload_signature", InvalidSignature),
        ("invalid_exact_evm_payload_recipient_mismatch", PaymentMismatch),
        ("payee_not_allowed", PaymentRejected),
        (None, PaymentRejected),
    ],
)
def test_reason_codes_pick_the_error_and_pass_through(reason: str | None, kind: type[Exception]) -> None:
    error = payment_error_for(reason, "The facilitator said no.")
    assert isinstance(error, kind)
    assert error.reason == (reason or "payment_rejected")
    assert str(error) == "The facilitator said no."


def test_a_facilitators_words_are_bounded_and_neutralised() -> None:
    error = payment_error_for("bad\u202ereason" + "x" * 500, "pay 0xdead\u202eto instead" + "!" * 5000)
    for text in (str(error), error.reason):
        assert "\u202e" not in text and "\\u202e" in text
    assert len(str(error)) < 500 and len(error.reason) < 150
    assert "\u202e" not in str(payment_error_for("code\u202e", None))

"""Reading what a paid call brings from outside: ids, payments, argument problems (no server)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from x402_mcp.core.ids import new_request_id
from x402_mcp.core.inbound import argument_problems, explicit_request_id, named_request_id, payment_from
from x402_mcp.core.wire import PaymentPayload, PaymentRequirements
from x402_mcp.errors import MalformedPayment, PaymentMismatch, UnknownPaymentRequest


def test_an_id_may_come_as_the_argument_or_in_meta_and_blank_means_none() -> None:
    request_id = new_request_id()
    assert explicit_request_id(request_id, None) == request_id
    assert explicit_request_id(None, request_id) == request_id
    assert explicit_request_id("", request_id) == request_id
    assert explicit_request_id(request_id, request_id) == request_id
    assert explicit_request_id(None, "") is None


@pytest.mark.parametrize(
    ("value", "shown_as"),
    [
        (12, "(a number)"),
        ([new_request_id()], "(an array)"),
        ({"id": 1}, "(an object)"),
        (False, "(a boolean)"),
        ("pr_" + "x" * 5000, "more characters"),
        ("pr_abc\u202edefghijklmnopqrstu", "\\u202e"),
        ("pr_abcdefghijklmnop\x00", "\\u0000"),
    ],
)
def test_what_cannot_be_an_id_is_refused_and_shown_bounded(value: Any, shown_as: str) -> None:
    with pytest.raises(UnknownPaymentRequest) as refused:
        explicit_request_id(value, None)
    message = str(refused.value)
    assert shown_as in message and "is not a payment request id" in message
    assert len(message) < 250 and "\u202e" not in message and "\x00" not in message


def test_two_different_ids_are_a_mismatch() -> None:
    with pytest.raises(PaymentMismatch, match="name one request"):
        explicit_request_id(new_request_id(), new_request_id())


@pytest.mark.parametrize(
    ("raw", "kind"), [(None, "null"), (1.5, "a number"), ([], "an array"), (True, "a boolean")]
)
def test_a_payment_must_be_an_object_or_text(raw: Any, kind: str) -> None:
    with pytest.raises(MalformedPayment, match=f"not {kind}$"):
        payment_from(raw)


def _v2(extra: dict[str, Any]) -> PaymentPayload:
    accepted = PaymentRequirements(
        scheme="exact",
        network="eip155:84532",
        amount="1",
        asset="0x" + "1" * 40,
        pay_to="0x" + "2" * 40,
        max_timeout_seconds=60,
        extra=extra,
    )
    authorization = {
        "from": "0x" + "3" * 40,
        "to": "0x" + "2" * 40,
        "value": "1",
        "validAfter": "0",
        "validBefore": "99999999999",
        "nonce": "0x" + "4" * 64,
    }
    return PaymentPayload.model_validate(
        {"accepted": accepted.dump(), "payload": {"signature": "0x00", "authorization": authorization}}
    )


def test_a_v2_payment_must_name_a_well_formed_request() -> None:
    request_id = new_request_id()
    assert named_request_id(_v2({"paymentRequestId": request_id})) == request_id
    with pytest.raises(PaymentMismatch, match="names no payment request"):
        named_request_id(_v2({}))
    with pytest.raises(UnknownPaymentRequest, match=r"\(a number\) is not a payment request id"):
        named_request_id(_v2({"paymentRequestId": 7}))


def test_argument_problems_name_fields_not_values_and_stop_at_five() -> None:
    class Arguments(BaseModel):
        a: int
        b: int
        c: int
        d: int
        e: int
        f: int
        g: int

    with pytest.raises(ValidationError) as invalid:
        Arguments.model_validate({"a": "S" * 10_000})
    text = argument_problems(invalid.value)
    assert text.startswith(
        "a: Input should be a valid integer, unable to parse string as an integer; b: Field"
    )
    assert text.endswith("; and 2 more") and "SSS" not in text

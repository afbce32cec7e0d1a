"""What a call of a paid tool brings from outside, read defensively (pure code).

A `tools/call` may carry a payment (`_meta["x402/payment"]`), a request id
(the `payment_request_id` argument or `_meta["x402-mcp/paymentRequestId"]`)
and arguments, each of any JSON shape an outsider cares to send. These
functions turn them into what the gate works with, or into the `PaymentError`
that names what is wrong. Nothing here queries a ledger: an id is checked for
shape first, and every value echoed in a message goes through `shown()`.
"""

from __future__ import annotations

from pydantic import ValidationError

from ..errors import MalformedPayment, PaymentMismatch, UnknownPaymentRequest
from .challenge import META_PAYMENT, META_REQUEST_ID, REQUEST_ID_ARGUMENT
from .ids import is_request_id
from .text import shown
from .wire import (
    PaymentPayload,
    ReceivedPayment,
    SchemePaymentPayload,
    SvmPaymentPayload,
    parse_payment_payload,
)

__all__ = ["argument_problems", "explicit_request_id", "json_kind", "named_request_id", "payment_from"]

ID_SHAPE = "a payment request id looks like pr_ and 24 letters, digits, '-' or '_'"
MAX_ARGUMENT_PROBLEMS = 5
"""Problems listed for invalid arguments; a call with more is told how many it has."""


def json_kind(value: object) -> str:
    """What JSON type `value` came as, for messages (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _described(value: object) -> str:
    return f"'{shown(value)}'" if isinstance(value, str) else f"({json_kind(value)})"


def explicit_request_id(argument: object, meta_value: object) -> str | None:
    """The request a call names outside a payment: its `payment_request_id` argument, else
    `_meta["x402-mcp/paymentRequestId"]`; None when it names none.

    `null` and `""` name none: hosts fill optional arguments that way.

    Raises:
        UnknownPaymentRequest: a value that cannot be an id (any type, size or character).
        PaymentMismatch: the argument and `_meta` name two different requests.
    """
    named: list[str] = []
    for where, value in ((REQUEST_ID_ARGUMENT, argument), (f'_meta["{META_REQUEST_ID}"]', meta_value)):
        if value is None or value == "":
            continue
        if not isinstance(value, str) or not is_request_id(value):
            raise UnknownPaymentRequest(
                f"{where} {_described(value)} is not a payment request id ({ID_SHAPE})"
            )
        named.append(value)
    if len(set(named)) > 1:
        raise PaymentMismatch(
            f'{REQUEST_ID_ARGUMENT} names {named[0]} but _meta["{META_REQUEST_ID}"] names {named[1]}; '
            "name one request"
        )
    return named[0] if named else None


def payment_from(raw: object) -> ReceivedPayment:
    """The payment in `_meta["x402/payment"]`: an object, or a JSON or base64 string of one.

    Raises:
        MalformedPayment: any other JSON type, or a payload `parse_payment_payload` refuses.
    """
    if not isinstance(raw, dict | str):
        raise MalformedPayment(
            f'_meta["{META_PAYMENT}"] must be a JSON object (or a JSON or base64 string of one), '
            f"not {json_kind(raw)}"
        )
    return parse_payment_payload(raw)


def named_request_id(payload: PaymentPayload | SvmPaymentPayload | SchemePaymentPayload) -> str:
    """The request an x402 v2 payment pays for: its `accepted.extra.paymentRequestId`.

    A v2 payment must name it: our challenges put it in every `accepts` entry and
    v2 clients echo the entry they chose verbatim, so a v2 payment without it was
    altered, and would otherwise pay for whatever call it is attached to. (An x402
    v1 payment has no `accepted`; the gate has it pay a fresh quote of its call.)

    Raises:
        PaymentMismatch: the payment names no request.
        UnknownPaymentRequest: it names something that cannot be an id.
    """
    value = payload.accepted.extra.get("paymentRequestId")
    if value is None:
        raise PaymentMismatch(
            "the payment names no payment request (accepted.extra.paymentRequestId is missing); "
            "sign one of the challenge's requirements exactly as it was given",
            reason="invalid_payment_requirements",
        )
    if not isinstance(value, str) or not is_request_id(value):
        raise UnknownPaymentRequest(
            f"the payment's accepted.extra.paymentRequestId {_described(value)} is not a payment request id "
            f"({ID_SHAPE})"
        )
    return value


def argument_problems(error: ValidationError) -> str:
    """Which arguments are wrong and how, from the tool's argument model, without their values."""
    problems = error.errors(include_url=False, include_input=False, include_context=False)
    listed = [
        f"{'.'.join(shown(str(part), 40) for part in problem['loc']) or 'the arguments'}: "
        f"{shown(problem['msg'], 120)}"
        for problem in problems[:MAX_ARGUMENT_PROBLEMS]
    ]
    more = len(problems) - MAX_ARGUMENT_PROBLEMS
    return "; ".join(listed) + (f"; and {more} more" if more > 0 else "")

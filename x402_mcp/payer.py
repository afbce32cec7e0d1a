"""Signing a payment for a challenge, as an x402 client does (no chain access)."""

from __future__ import annotations

from typing import Any, cast

from eth_account.signers.local import LocalAccount
from mcp.types import CallToolResult, RequestParamsMeta, TextContent

from .challenge import META_PAYMENT
from .errors import MalformedPayment
from .evm import sign_authorization
from .wire import PaymentPayload, PaymentRequired, PaymentRequirements


def read_challenge(data: Any) -> PaymentRequired:
    """A v2 `PaymentRequired` from a challenge: the tool error itself (its `structuredContent`,
    else the JSON of `content[0]`, which is all a tool with an `outputSchema` sends), or that
    object or JSON text."""
    if isinstance(data, CallToolResult):
        first = data.content[0] if data.content else None
        data = data.structured_content or (first.text if isinstance(first, TextContent) else None)
    try:
        return (
            PaymentRequired.model_validate_json(data)
            if isinstance(data, str)
            else PaymentRequired.model_validate(data)
        )
    except ValueError as exc:
        raise MalformedPayment(f"not an x402 v2 PaymentRequired: {exc}") from None


def sign_payment(
    account: LocalAccount, required: PaymentRequired, requirements: PaymentRequirements | None = None
) -> PaymentPayload:
    """Sign `requirements` (default: the first exact EVM entry of `required.accepts`)."""
    chosen = requirements or next(
        (
            option
            for option in required.accepts
            if option.scheme == "exact" and option.network.startswith("eip155:")
        ),
        None,
    )
    if chosen is None:
        raise MalformedPayment("the challenge offers no exact EVM payment option")
    return PaymentPayload(
        resource=required.resource, accepted=chosen, payload=sign_authorization(account, chosen)
    )


def payment_meta(payment: PaymentPayload) -> RequestParamsMeta:
    """The `_meta` of a paid retry: `{"x402/payment": <PaymentPayload as JSON>}`."""
    return cast(RequestParamsMeta, {META_PAYMENT: payment.dump()})

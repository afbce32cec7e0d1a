"""Does a payment match what we asked for? (pure code, no chain)

These checks run before any backend is called, so that a wrong payee, asset,
network or amount is refused with a precise message and without a round trip.
The backend then checks what needs the chain: signature, nonce, balance.

An EOA's signature is recovered here. A smart wallet's (EIP-1271, or ERC-6492
for one not deployed yet) can only be judged by the chain, so it is left to the
backend: `Match.signature_checked` says which happened, and a caller that claims
the payment's nonce must verify an unchecked signature first (see `Collector.begin`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...core.evm import signature_problem, signed_by_payer
from ...core.money import format_usd
from ...core.networks import Network, resolve_network, same_address
from ...core.text import shown
from ...core.wire import (
    AnyPaymentPayload,
    PaymentPayload,
    PaymentRequirements,
    ReceivedPayment,
    SvmPaymentPayload,
    is_address,
    is_nonce,
    parse_uint,
)
from ...errors import (
    InvalidSignature,
    MalformedPayment,
    PaymentExpired,
    PaymentMismatch,
    PaymentNotYetValid,
)

VALID_BEFORE_GRACE_SECONDS = 6
"""x402 facilitators want at least this long left, for the settlement to be mined."""


def payload_network(payload: AnyPaymentPayload) -> str:
    """The CAIP-2 network a payment is for, whatever its version."""
    if isinstance(payload, PaymentPayload):
        return payload.accepted.network
    try:
        return resolve_network(payload.network).caip2
    except ValueError:
        return payload.network


def payload_scheme(payload: AnyPaymentPayload) -> str:
    return payload.accepted.scheme if isinstance(payload, PaymentPayload) else payload.scheme


def referenced_request_id(payload: ReceivedPayment) -> str | None:
    """The `paymentRequestId` a v2 payment echoes back in `accepted.extra`, if any."""
    if isinstance(payload, (PaymentPayload, SvmPaymentPayload)):
        value = payload.accepted.extra.get("paymentRequestId")
        return value if isinstance(value, str) else None
    return None


def _wire_uint(value: object, what: str) -> int:
    try:
        return parse_uint(value, what)
    except ValueError as exc:
        raise MalformedPayment(f"{exc} (got {shown(repr(value))})") from None


@dataclass(frozen=True, slots=True)
class Match:
    """A payment that fits our requirements.

    `signature_checked` is True when the signature recovered to `payer` by ECDSA.
    When False, only the chain can tell whether `payer` (a contract wallet, or an
    account that does not exist yet) accepts it: until the backend has verified it,
    nothing may be recorded in the payer's name.
    """

    payer: str
    signature_checked: bool


def match_payment(
    payload: AnyPaymentPayload, requirements: PaymentRequirements, network: Network, *, now: float
) -> Match:
    """Check a payment against our requirements; return its payer and whether its signature was checked.

    Every field is read again with the wire grammar, so a payload built in code
    (or copied without validation) is held to the same rules as one parsed from JSON.

    Raises:
        MalformedPayment: a field that is not what the wire allows (an address,
            a canonical uint256, a bytes32 nonce, hex signature bytes).
        PaymentMismatch: wrong scheme, network, asset, payee or amount.
        PaymentExpired / PaymentNotYetValid: outside its validity window.
        InvalidSignature: the signature is not hex, or is a 65-byte ECDSA signature in a
            form USDC refuses (bad recovery byte, high s).
    """
    scheme = payload_scheme(payload)
    if scheme != "exact":
        raise PaymentMismatch(
            f"scheme {shown(repr(scheme))} is not accepted; use 'exact'", reason="unsupported_scheme"
        )
    paid_network = payload_network(payload)
    if paid_network != requirements.network:
        raise PaymentMismatch(
            f"the payment is for network {shown(paid_network)}, but this tool is paid on "
            f"{network.label} ({requirements.network})",
            reason="network_mismatch",
        )
    if isinstance(payload, PaymentPayload) and not same_address(payload.accepted.asset, requirements.asset):
        raise PaymentMismatch(
            f"the payment is in asset {shown(payload.accepted.asset)}, "
            f"but this tool is paid in {requirements.asset}",
            reason="invalid_payment_requirements",
        )
    if isinstance(payload, PaymentPayload):
        _match_echoed_terms(payload.accepted, requirements)
    authorization = payload.payload.authorization
    for field, address in (("from", authorization.from_), ("to", authorization.to)):
        if not is_address(address):
            raise MalformedPayment(
                f"the authorization's {field!r} is not an address (0x and 40 hex digits): {shown(address)}"
            )
    if not is_nonce(authorization.nonce):
        raise MalformedPayment(
            f"the authorization's nonce must be 0x and 64 hex digits, not {shown(authorization.nonce)}"
        )
    if not same_address(authorization.to, requirements.pay_to):
        raise PaymentMismatch(
            f"the payment goes to {authorization.to}, but this tool's payee is {requirements.pay_to}",
            reason="invalid_exact_evm_payload_recipient_mismatch",
        )
    value = _wire_uint(authorization.value, "the authorization's value")
    price = parse_uint(requirements.amount, "the price")
    if value != price:
        raise PaymentMismatch(
            f"the payment is for {format_usd(value)} ({value} atomic units); "
            f"the price is {format_usd(price)} ({price})",
            reason="invalid_exact_evm_payload_authorization_value_mismatch",
        )
    valid_before = _wire_uint(authorization.valid_before, "the authorization's validBefore")
    valid_after = _wire_uint(authorization.valid_after, "the authorization's validAfter")
    if valid_before < now + VALID_BEFORE_GRACE_SECONDS:
        raise PaymentExpired("the payment authorization has expired (validBefore has passed); sign a new one")
    if valid_after > now:
        raise PaymentNotYetValid(f"the payment authorization is not valid until unix time {valid_after}")
    problem = signature_problem(payload.payload.signature)
    if problem is not None:
        raise InvalidSignature(problem)
    # A signature that does not recover to `from` may still be good: a contract wallet
    # answers for itself through EIP-1271, whatever the signature's length.
    return Match(payer=authorization.from_, signature_checked=signed_by_payer(payload.payload, requirements))


def _match_echoed_terms(accepted: PaymentRequirements, requirements: PaymentRequirements) -> None:
    """A v2 payment echoes the requirement it signed for; its payee and amount must be ours.

    The signed authorization is what moves money, but a payment whose echo names other
    terms was built for another offer (or altered), so it is refused rather than read kindly.
    """
    if not same_address(accepted.pay_to, requirements.pay_to):
        raise PaymentMismatch(
            f"the payment's accepted.payTo is {shown(accepted.pay_to)}, but this tool's payee is "
            f"{requirements.pay_to}",
            reason="invalid_exact_evm_payload_recipient_mismatch",
        )
    if accepted.amount != requirements.amount:
        raise PaymentMismatch(
            f"the payment's accepted.amount is {shown(accepted.amount)}, but the price is "
            f"{requirements.amount} atomic units",
            reason="invalid_exact_evm_payload_authorization_value_mismatch",
        )


def match_solana_payment(payload: SvmPaymentPayload, requirements: PaymentRequirements) -> None:
    """Check what a Solana payment says it accepted against our requirements (pure code).

    The transaction itself is the facilitator's to check; this only refuses,
    with a precise message and without a round trip, a payment made for
    requirements other than ours.

    Raises:
        PaymentMismatch: naming the first field that differs.
    """
    accepted = payload.accepted
    fields = (
        ("scheme", accepted.scheme, requirements.scheme, "unsupported_scheme"),
        ("network", accepted.network, requirements.network, "network_mismatch"),
        ("asset (mint)", accepted.asset, requirements.asset, "invalid_exact_svm_payload_mint_mismatch"),
        ("payee", accepted.pay_to, requirements.pay_to, "invalid_exact_svm_payload_recipient_mismatch"),
        ("amount", accepted.amount, requirements.amount, "invalid_exact_svm_payload_amount_insufficient"),
        (
            "fee payer",
            accepted.extra.get("feePayer"),
            requirements.extra.get("feePayer"),
            "invalid_exact_svm_payload_missing_fee_payer",
        ),
    )
    for name, theirs, ours, reason in fields:
        if theirs != ours:
            raise PaymentMismatch(
                f"the payment's {name} is {shown(repr(theirs))}, but this tool asks for {ours!r} on "
                f"{requirements.network}",
                reason=reason,
            )

"""The exact-EVM checks a facilitator makes before it asks the chain (x402 `verify`, steps 1-9).

Pure code: no node, no clock of its own. The order and the reason codes follow the
official Python facilitator, so a payer gets the same answer from us as from
x402.org. What only the chain can tell (nonce already used, balance, contract
signers) is left to the backend that calls `check_exact_payment`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.erc6492 import Erc6492Signature, unwrap_erc6492
from ..core.evm import chain_id_of, signature_problem, signed_by_payer
from ..core.networks import resolve_network, same_address
from ..core.text import shown
from ..core.wire import (
    AnyPaymentPayload,
    ExactPayload,
    PaymentPayloadV1,
    PaymentRequirements,
    is_address,
    is_nonce,
    parse_uint,
)
from ..errors import ConfigurationError, Refusal

__all__ = [
    "ASSET_NOT_DEPLOYED",
    "ERC6492_FACTORY_NOT_ALLOWED",
    "INSUFFICIENT_BALANCE",
    "INVALID_PAYLOAD",
    "INVALID_PAYMENT_REQUIREMENTS",
    "INVALID_SIGNATURE",
    "MISSING_EIP712_DOMAIN",
    "NETWORK_MISMATCH",
    "NONCE_ALREADY_USED",
    "RECIPIENT_MISMATCH",
    "SIMULATION_FAILED",
    "TRANSACTION_FAILED",
    "TRANSFER_EVENT_MISMATCH",
    "UNDEPLOYED_SMART_WALLET",
    "UNSUPPORTED_NETWORK_CONFIG",
    "UNSUPPORTED_SCHEME",
    "VALID_AFTER",
    "VALID_BEFORE",
    "VALID_BEFORE_GRACE_SECONDS",
    "VALUE_MISMATCH",
    "CheckedPayment",
    "Refusal",
    "check_exact_payment",
    "reported_network",
]

# Reason codes, spelled as the official Python SDK spells them (TS and Go differ; see x402.md §4.6).
UNSUPPORTED_SCHEME = "unsupported_scheme"
NETWORK_MISMATCH = "network_mismatch"
UNSUPPORTED_NETWORK_CONFIG = "invalid_exact_evm_failed_to_get_network_config"
MISSING_EIP712_DOMAIN = "missing_eip712_domain"
INVALID_PAYLOAD = "invalid_payload"
INVALID_PAYMENT_REQUIREMENTS = "invalid_payment_requirements"
RECIPIENT_MISMATCH = "invalid_exact_evm_payload_recipient_mismatch"
VALUE_MISMATCH = "invalid_exact_evm_payload_authorization_value_mismatch"
VALID_BEFORE = "invalid_exact_evm_payload_authorization_valid_before"
VALID_AFTER = "invalid_exact_evm_payload_authorization_valid_after"
INVALID_SIGNATURE = "invalid_exact_evm_payload_signature"
NONCE_ALREADY_USED = "invalid_exact_evm_nonce_already_used"
INSUFFICIENT_BALANCE = "invalid_exact_evm_insufficient_balance"
ASSET_NOT_DEPLOYED = "asset_not_deployed_contract"
SIMULATION_FAILED = "invalid_exact_evm_transaction_simulation_failed"
TRANSACTION_FAILED = "transaction_failed"
TRANSFER_EVENT_MISMATCH = "invalid_exact_evm_transfer_event_mismatch"
ERC6492_FACTORY_NOT_ALLOWED = "eip6492_factory_not_allowed"
UNDEPLOYED_SMART_WALLET = "invalid_exact_evm_payload_undeployed_smart_wallet"

VALID_BEFORE_GRACE_SECONDS = 6
"""An authorization must stay valid this much longer, so it is still valid when its block is mined."""


@dataclass(frozen=True, slots=True)
class CheckedPayment:
    """A payment that passed every check that needs no chain.

    `signer_verified` is True when the signature recovers to `payer` by ECDSA. When it
    is False the payment can still be good, but only if `payer` is a contract wallet
    that accepts the signature through EIP-1271; the chain must decide.

    For an ERC-6492 signature, `exact` carries the wallet's own (unwrapped) signature,
    the one the token is given, and `deployment` says how to deploy the wallet.
    """

    exact: ExactPayload
    payer: str
    value: int
    signer_verified: bool
    deployment: Erc6492Signature | None = None


def reported_network(payload: AnyPaymentPayload, requirements: PaymentRequirements) -> str:
    """The network name to put in a response: the v1 name for a v1 payment, else CAIP-2."""
    return payload.network if isinstance(payload, PaymentPayloadV1) else requirements.network


def _payload_network(payload: AnyPaymentPayload) -> tuple[str, str | None]:
    """(the network as the payer wrote it, its CAIP-2 form or None if unknown)."""
    if not isinstance(payload, PaymentPayloadV1):
        return payload.accepted.network, payload.accepted.network
    try:
        return payload.network, resolve_network(payload.network).caip2
    except ConfigurationError:
        return payload.network, None


def check_exact_payment(
    payload: AnyPaymentPayload, requirements: PaymentRequirements, *, now: int
) -> CheckedPayment | Refusal:
    """Check an exact-EVM payment against *our* requirements at unix time `now`.

    Returns the first failure as a `Refusal`, in the official facilitator's order:
    scheme, network, EIP-712 domain, recipient, value, validBefore (with a
    6-second grace), validAfter, signature.
    """
    scheme = payload.scheme if isinstance(payload, PaymentPayloadV1) else payload.accepted.scheme
    if scheme != "exact" or requirements.scheme != "exact":
        return Refusal(
            UNSUPPORTED_SCHEME,
            f"The payment uses the {shown(repr(scheme))} scheme; only 'exact' is accepted here.",
        )

    written, caip2 = _payload_network(payload)
    if caip2 != requirements.network:
        return Refusal(
            NETWORK_MISMATCH,
            f"The payment is for network {shown(repr(written))}, "
            f"but it must be made on {shown(requirements.network)}.",
        )
    try:
        chain_id_of(requirements.network)
    except ValueError:
        return Refusal(UNSUPPORTED_NETWORK_CONFIG, f"{shown(requirements.network)} is not an EVM network.")

    name, version = requirements.extra.get("name"), requirements.extra.get("version")
    if not isinstance(name, str) or not name or not isinstance(version, str) or not version:
        return Refusal(
            MISSING_EIP712_DOMAIN,
            "The payment requirements do not name the token's EIP-712 domain (extra.name and extra.version), "
            "so the signature cannot be checked.",
        )

    exact = payload.payload
    auth = exact.authorization
    addresses = (
        ("paymentRequirements.asset", requirements.asset, INVALID_PAYMENT_REQUIREMENTS),
        ("paymentRequirements.payTo", requirements.pay_to, INVALID_PAYMENT_REQUIREMENTS),
        ("The authorization's 'from'", auth.from_, INVALID_PAYLOAD),
        ("The authorization's 'to'", auth.to, INVALID_PAYLOAD),
    )
    for what, address, reason in addresses:
        if not is_address(address):
            return Refusal(
                reason, f"{what} must be an EVM address (0x and 40 hex digits), not {shown(repr(address))}."
            )
    if not is_nonce(auth.nonce):
        return Refusal(
            INVALID_PAYLOAD,
            f"The authorization's nonce must be 0x and 64 hex digits, not {shown(repr(auth.nonce))}.",
        )
    numbers: list[int] = []
    fields = (("value", auth.value), ("validAfter", auth.valid_after), ("validBefore", auth.valid_before))
    for field, text in fields:
        try:
            numbers.append(parse_uint(text, f"The authorization's {field}"))
        except ValueError as exc:
            return Refusal(INVALID_PAYLOAD, f"{exc}, not {shown(repr(text))}.")
    value, valid_after, valid_before = numbers
    try:
        price = parse_uint(requirements.amount, "paymentRequirements.amount")
    except ValueError as exc:
        return Refusal(INVALID_PAYMENT_REQUIREMENTS, f"{exc}, not {shown(repr(requirements.amount))}.")

    if not same_address(auth.to, requirements.pay_to):
        return Refusal(
            RECIPIENT_MISMATCH,
            f"The authorization pays {auth.to}, but this payment must go to {requirements.pay_to}.",
        )
    if value != price:
        return Refusal(
            VALUE_MISMATCH,
            f"The authorization transfers {value} atomic units, but the price is exactly {price}.",
        )
    if valid_before < now + VALID_BEFORE_GRACE_SECONDS:
        return Refusal(
            VALID_BEFORE,
            f"The authorization expires at {valid_before} (unix time); it must stay valid for at least "
            f"{VALID_BEFORE_GRACE_SECONDS} more seconds (it is now {now}). Sign a new one.",
        )
    if valid_after > now:
        return Refusal(
            VALID_AFTER,
            f"The authorization only becomes valid at {valid_after} (unix time); it is now {now}.",
        )

    problem = signature_problem(exact.signature)
    if problem is not None:
        return Refusal(INVALID_SIGNATURE, problem)
    try:
        deployment = unwrap_erc6492(bytes.fromhex(exact.signature[2:]))
    except ValueError as exc:
        return Refusal(INVALID_SIGNATURE, f"{str(exc).capitalize()}.")
    if deployment is not None and not deployment.signature:
        return Refusal(INVALID_SIGNATURE, "The ERC-6492 wrapper holds an empty signature.")
    if deployment is not None:
        inner = ExactPayload(signature="0x" + deployment.signature.hex(), authorization=auth)
        return CheckedPayment(
            exact=inner, payer=auth.from_, value=value, signer_verified=False, deployment=deployment
        )
    verified = signed_by_payer(exact, requirements)
    return CheckedPayment(exact=exact, payer=auth.from_, value=value, signer_verified=verified)

"""x402 wire models (v2, plus v1 for reading) and their encodings.

camelCase on the wire, `None` fields left out, amounts as strings of atomic
units. `dump()` gives the JSON-ready dict; `encode_header()`/`decode_header()`
the base64 form HTTP headers use.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from ..errors import MalformedPayment
from .payment_objects import MAX_PAYLOAD_BYTES as MAX_PAYLOAD_BYTES
from .payment_objects import read_payment_object as read_payment_object
from .text import shown


class WireModel(BaseModel):
    # strict: pydantic's lax mode would read "600", 600.0 and True as the integer 600 (or 1),
    # and "true" as a boolean; on the wire a number is a JSON number and a flag a JSON boolean.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True, extra="allow", strict=True
    )

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)


UINT256_LIMIT = 2**256
"""Every integer on the wire (amounts, times) is a uint256 on chain; this bound is exclusive."""

MAX_TIMEOUT_SECONDS = 2**31 - 1
"""The largest `maxTimeoutSeconds` read or written (about 68 years; it fits every INTEGER column)."""

X402_VERSIONS = (1, 2)

_HEX32 = re.compile(r"0x[0-9a-fA-F]{64}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def parse_uint(value: object, what: str = "the value") -> int:
    """Read a wire integer: ASCII decimal digits, no sign, no leading zero, below 2**256.

    `str.isdigit()` is not this grammar: it accepts "²" (which `int()` refuses)
    and full-width digits (which `int()` reads), so every entry point uses this.

    Raises:
        ValueError: naming `what` and the grammar.
    """
    # Exactly the grammar `0|[1-9][0-9]*` (up to 78 digits), without a regex: this runs
    # several times per payment verified. isascii() first: "²".isdigit() is True.
    if not (
        isinstance(value, str)
        and 0 < len(value) <= 78
        and value.isascii()
        and value.isdigit()
        and (value[0] != "0" or len(value) == 1)
    ):
        raise ValueError(f"{what} must be a string of ASCII decimal digits without leading zeros")
    number = int(value)
    if number >= UINT256_LIMIT:
        raise ValueError(f"{what} must be below 2**256")
    return number


def is_nonce(value: object) -> bool:
    """Whether `value` is an EIP-3009 nonce: `0x` and 64 hex digits (bytes32)."""
    return isinstance(value, str) and _HEX32.fullmatch(value) is not None


def hex_bytes(value: object) -> bytes | None:
    """The bytes of `0x` and an even, non-zero number of hex digits; None for anything else.

    `bytes.fromhex` alone is not this: it skips spaces.
    """
    # `0x(?:[0-9a-fA-F]{2})+` without a regex (that one costs microseconds on a signature):
    # fromhex refuses anything but hex digits and whitespace, and yields exactly half as
    # many bytes as there are digits only when nothing was skipped.
    if not isinstance(value, str) or len(value) < 4 or len(value) % 2 or not value.startswith("0x"):
        return None
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        return None
    return raw if 2 * len(raw) == len(value) - 2 else None


def is_address(value: object) -> bool:
    """Whether `value` is an EVM address in hex (any case; checksums are not required)."""
    return isinstance(value, str) and _ADDRESS.fullmatch(value) is not None


def _decimal_string(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError("must be a string of decimal digits (atomic units)")
    parse_uint(value, "it")
    return value


def _version(value: Any) -> int:
    # Literal[2] alone would take 2.0: Python compares it equal to 2.
    if type(value) is not int:
        raise ValueError("must be the JSON integer 1 or 2")
    return value


def _address(value: Any) -> str:
    if not is_address(value):
        raise ValueError("must be an address: 0x followed by 40 hex digits")
    return str(value)


class ResourceInfo(WireModel):
    url: str
    description: str | None = None
    mime_type: str | None = None


class PaymentRequirements(WireModel):
    scheme: str
    network: str
    amount: str
    asset: str
    pay_to: str
    max_timeout_seconds: int = Field(gt=0, le=MAX_TIMEOUT_SECONDS)
    extra: dict[str, Any] = Field(default_factory=dict)

    _check_amount = field_validator("amount", mode="before")(_decimal_string)


class PaymentRequired(WireModel):
    x402_version: Literal[2] = 2
    error: str | None = None
    resource: ResourceInfo | None = None
    accepts: list[PaymentRequirements]
    extensions: dict[str, Any] | None = None

    _check_version = field_validator("x402_version", mode="before")(_version)


class ExactAuthorization(WireModel):
    """EIP-3009 `TransferWithAuthorization` fields; every value is a string on the wire."""

    from_: str = Field(alias="from")
    to: str
    value: str
    valid_after: str
    valid_before: str
    nonce: str

    _check_numbers = field_validator("value", "valid_after", "valid_before", mode="before")(_decimal_string)
    _check_addresses = field_validator("from_", "to", mode="before")(_address)

    @field_validator("nonce", mode="before")
    @classmethod
    def _check_nonce(cls, nonce: Any) -> str:
        if not is_nonce(nonce):
            raise ValueError("must be 0x followed by 64 hex digits")
        return str(nonce)


class ExactPayload(WireModel):
    signature: str
    authorization: ExactAuthorization

    @field_validator("signature", mode="before")
    @classmethod
    def _check_signature(cls, signature: Any) -> str:
        if hex_bytes(signature) is None:
            raise ValueError("must be 0x followed by an even, non-zero number of hex digits")
        return str(signature)


class _PaymentV2(WireModel):
    """What every x402 v2 payment holds besides its scheme's `payload` (and `extensions`)."""

    x402_version: Literal[2] = 2
    resource: ResourceInfo | None = None
    accepted: PaymentRequirements

    _check_version = field_validator("x402_version", mode="before")(_version)


class PaymentPayload(_PaymentV2):
    payload: ExactPayload
    extensions: dict[str, Any] | None = None


class SvmExactPayload(WireModel):
    """An exact-SVM payment: a transaction the payer signed and the facilitator completes."""

    transaction: str

    @field_validator("transaction")
    @classmethod
    def _check_transaction(cls, transaction: str) -> str:
        try:
            raw = base64.b64decode(transaction, validate=True)
        except binascii.Error:
            raise ValueError("must be base64 of a serialized Solana transaction") from None
        if not raw:
            raise ValueError("must not be empty")
        return transaction


class SvmPaymentPayload(_PaymentV2):
    """A v2 payment on a Solana network (`accepted.network` is `solana:…`).

    We do not read the transaction: the facilitator checks it against our
    requirements (payee, mint, amount, fee payer, memo) and settles it.
    """

    payload: SvmExactPayload
    extensions: dict[str, Any] | None = None


class SchemePaymentPayload(_PaymentV2):
    """A v2 payment in a scheme other than `exact` (`batch-settlement`): its `payload` is read
    by that scheme (`x402_mcp.schemes`), which the registry finds by `accepted.scheme`."""

    payload: dict[str, Any]
    extensions: dict[str, Any] | None = None


class PaymentRequirementsV1(WireModel):
    scheme: str
    network: str
    max_amount_required: str
    resource: str
    description: str = ""
    mime_type: str | None = None
    pay_to: str
    max_timeout_seconds: int = Field(gt=0, le=MAX_TIMEOUT_SECONDS)
    asset: str
    output_schema: dict[str, Any] | None = None
    extra: dict[str, Any] | None = None

    _check_amount = field_validator("max_amount_required", mode="before")(_decimal_string)


class PaymentPayloadV1(WireModel):
    x402_version: Literal[1] = 1
    scheme: str
    network: str
    payload: ExactPayload

    _check_version = field_validator("x402_version", mode="before")(_version)


class VerifyResponse(WireModel):
    is_valid: bool
    invalid_reason: str | None = None
    invalid_message: str | None = None
    payer: str | None = None


class SettleResponse(WireModel):
    success: bool
    transaction: str = ""
    network: str
    payer: str | None = None
    error_reason: str | None = None
    error_message: str | None = None
    amount: str | None = None

    @field_validator("amount", mode="before")
    @classmethod
    def _check_amount(cls, amount: Any) -> str | None:
        # Optional, and some facilitators send "" for "not stated"; anything else is a wire integer.
        if amount is None or amount == "":
            return None
        return _decimal_string(amount)


class SupportedKind(WireModel):
    x402_version: int = Field(ge=1, le=2**16)
    scheme: str
    network: str
    extra: dict[str, Any] | None = None


class SupportedResponse(WireModel):
    kinds: list[SupportedKind]
    extensions: list[str] = Field(default_factory=list)
    signers: dict[str, list[str]] = Field(default_factory=dict)


AnyPaymentPayload = PaymentPayload | PaymentPayloadV1
"""An exact-EVM payment, in either protocol version."""


ReceivedPayment = AnyPaymentPayload | SvmPaymentPayload | SchemePaymentPayload
"""Any payment a payer can send us: exact-EVM (v1 or v2), exact-SVM (v2), or another scheme's (v2)."""


def validation_error_text(exc: ValidationError) -> str:
    """`"<field path> is invalid: <why>"` for the first error, safe to echo (the path holds outside keys)."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    return f"{shown(where)} is invalid: {shown(first['msg'], 200)}"


def parse_payment_payload(raw: Any) -> ReceivedPayment:
    """A payment from `_meta["x402/payment"]` or a header; `MalformedPayment` names what is wrong."""
    data = read_payment_object(raw)
    written = data.get("x402Version")
    version = written if type(written) is int else None  # 2.0 == 2 and True == 1 in Python
    model: (
        type[PaymentPayload] | type[PaymentPayloadV1] | type[SvmPaymentPayload] | type[SchemePaymentPayload]
    )
    if version == 2:
        model = SvmPaymentPayload if _network_of(data).startswith("solana") else PaymentPayload
        accepted = data.get("accepted")
        if isinstance(accepted, dict) and accepted.get("scheme", "exact") != "exact":
            model = SchemePaymentPayload
    elif version == 1:
        if _network_of(data).startswith("solana"):
            raise MalformedPayment(
                "Solana payments are accepted in x402 version 2 only", reason="invalid_x402_version"
            )
        model = PaymentPayloadV1
    else:
        raise MalformedPayment(
            f"unsupported x402Version {shown(repr(written))}; expected 2 (or 1)",
            reason="invalid_x402_version",
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MalformedPayment(f"the payment's {validation_error_text(exc)}") from None


def parse_evm_payment(raw: Any) -> AnyPaymentPayload:
    """`parse_payment_payload` for code that settles EVM payments only.

    Raises:
        MalformedPayment: as `parse_payment_payload`, or for a Solana payment.
    """
    payload = parse_payment_payload(raw)
    if isinstance(payload, SvmPaymentPayload):
        raise MalformedPayment(
            f"payments on {payload.accepted.network} are not accepted here; only EVM networks are",
            reason="network_mismatch",
        )
    if isinstance(payload, SchemePaymentPayload):
        raise MalformedPayment(f"{shown(payload.accepted.scheme)} is not exact", reason="unsupported_scheme")
    return payload


def _network_of(data: dict[str, Any]) -> str:
    accepted = data.get("accepted")
    network = accepted.get("network") if isinstance(accepted, dict) else data.get("network")
    return network.strip().lower() if isinstance(network, str) else ""


def encode_header(model: WireModel) -> str:
    """Standard padded base64 of the model's JSON, as x402 HTTP headers carry it."""
    return base64.b64encode(model.to_json().encode()).decode("ascii")


def decode_header(value: str) -> dict[str, Any]:
    """Inverse of `encode_header`, for any x402 header; raises `MalformedPayment`."""
    return read_payment_object(value.strip() if value.strip().startswith("{") else value)

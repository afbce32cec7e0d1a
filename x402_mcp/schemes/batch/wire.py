"""The batch-settlement wire format: payloads, the requirements' `extra`, the corrective state.

Read strictly: addresses are `0x` and 40 hex digits, ids and salts `0x` and 64, amounts
strings of decimal digits below 2**128 (what the contract stores), times and delays JSON
integers; a signature is hex of at most `MAX_SIGNATURE_BYTES`. Unknown keys are dropped
(other SDKs add their own, such as `__extensions`), never carried along. Every error names
the field, and the whole payment is bounded before it is read (`read_payment_object`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.functional_validators import BeforeValidator

from ...core.text import shown

# `_address` and `_decimal_string`: the x402 wire's own field validators, so an address or an
# amount reads (and is refused) the same in every scheme.
from ...core.wire import (
    UINT256_LIMIT,
    PaymentRequirements,
    ResourceInfo,
    WireModel,
    _address,
    _decimal_string,
    hex_bytes,
    is_nonce,
    parse_uint,
    read_payment_object,
    validation_error_text,
)
from ...errors import MalformedPayment
from . import reasons
from .constants import MAX_WITHDRAW_DELAY_SECONDS, MIN_WITHDRAW_DELAY_SECONDS

MAX_SIGNATURE_BYTES = 4096
"""An ECDSA signature is 65 bytes; an EIP-1271 or ERC-6492 one more, but never this much."""

UINT128_LIMIT = 2**128
"""The contract keeps amounts as uint128: a ceiling, claim or refund above it cannot be made on chain."""

UINT40_LIMIT = 2**40
"""`withdrawDelay` is a uint40 in the channel config."""

MAX_DOMAIN_TEXT = 256
"""The token's EIP-712 `name` and `version` (`"USD Coin"`, `"2"`) are short."""


def same_address(a: str, b: str) -> bool:
    """Whether two hex addresses name one account (their case, a checksum or not, aside)."""
    return a.lower() == b.lower()


def is_zero_address(address: str) -> bool:
    return int(address, 16) == 0


def _bytes32(value: Any) -> str:
    if not is_nonce(value):
        raise ValueError("must be 32 bytes: 0x followed by 64 hex digits")
    return str(value)


def _uint128_text(value: Any) -> str:
    text = _decimal_string(value)
    if int(text) >= UINT128_LIMIT:
        raise ValueError("must be below 2**128, the contract's uint128")
    return text


def _signature(value: Any) -> str:
    raw = hex_bytes(value)
    if raw is None:
        raise ValueError("must be 0x followed by an even, non-zero number of hex digits")
    if len(raw) > MAX_SIGNATURE_BYTES:
        raise ValueError(f"must be at most {MAX_SIGNATURE_BYTES} bytes")
    return str(value)


def _json_uint(value: Any) -> int:
    """A counter the SDKs write either way (`0` or `"0"`): a JSON integer or decimal text."""
    if type(value) is int and 0 <= value < UINT256_LIMIT:
        return value
    if isinstance(value, str):
        return parse_uint(value, "it")
    raise ValueError("must be a non-negative integer (a JSON integer or a string of decimal digits)")


Address = Annotated[str, BeforeValidator(_address)]
Bytes32 = Annotated[str, BeforeValidator(_bytes32)]
Amount = Annotated[str, BeforeValidator(_uint128_text)]
Uint256Text = Annotated[str, BeforeValidator(_decimal_string)]
Signature = Annotated[str, BeforeValidator(_signature)]
Counter = Annotated[int, BeforeValidator(_json_uint)]
DomainText = Annotated[str, Field(min_length=1, max_length=MAX_DOMAIN_TEXT)]


class BatchModel(WireModel):
    model_config = ConfigDict(extra="ignore")


class ChannelConfig(BatchModel):
    """The immutable channel identity; its EIP-712 hash is the channel id."""

    payer: Address
    payer_authorizer: Address
    receiver: Address
    receiver_authorizer: Address
    token: Address
    withdraw_delay: int = Field(ge=0, lt=UINT40_LIMIT)
    salt: Bytes32


class Voucher(BatchModel):
    """A cumulative ceiling the payer signed: the receiver may claim up to `max_claimable_amount`."""

    channel_id: Bytes32
    max_claimable_amount: Amount
    signature: Signature


class Erc3009DepositAuthorization(BatchModel):
    """A `receiveWithAuthorization` to the ERC-3009 collector; its nonce derives from the salt."""

    valid_after: Uint256Text
    valid_before: Uint256Text
    salt: Bytes32
    signature: Signature


class Permit2Permitted(BatchModel):
    token: Address
    amount: Uint256Text


class Permit2Witness(BatchModel):
    channel_id: Bytes32


class Permit2DepositAuthorization(BatchModel):
    """A Permit2 witness transfer to the Permit2 collector, bound to the channel by its witness."""

    from_: Address = Field(alias="from")
    permitted: Permit2Permitted
    spender: Address
    nonce: Uint256Text
    deadline: Uint256Text
    witness: Permit2Witness
    signature: Signature


class DepositAuthorization(BatchModel):
    erc3009_authorization: Erc3009DepositAuthorization | None = None
    permit2_authorization: Permit2DepositAuthorization | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> DepositAuthorization:
        if (self.erc3009_authorization is None) == (self.permit2_authorization is None):
            raise ValueError("must hold exactly one of erc3009Authorization and permit2Authorization")
        return self


class Deposit(BatchModel):
    amount: Amount
    authorization: DepositAuthorization


class DepositPayload(BatchModel):
    """Opens or tops up a channel, and pays this call with the voucher it carries."""

    type: Literal["deposit"] = "deposit"
    channel_config: ChannelConfig
    voucher: Voucher
    deposit: Deposit


class VoucherPayload(BatchModel):
    """Pays one call on an open channel."""

    type: Literal["voucher"] = "voucher"
    channel_config: ChannelConfig
    voucher: Voucher


class RefundPayload(BatchModel):
    """Asks for the unspent balance back (all of it, or `amount`); its voucher charges nothing."""

    type: Literal["refund"] = "refund"
    channel_config: ChannelConfig
    voucher: Voucher
    amount: Amount | None = None


BatchPayload = DepositPayload | VoucherPayload | RefundPayload

_PAYLOADS: dict[str, tuple[type[BatchPayload], str]] = {
    "deposit": (DepositPayload, reasons.DEPOSIT_PAYLOAD),
    "voucher": (VoucherPayload, reasons.VOUCHER_PAYLOAD),
    "refund": (RefundPayload, reasons.REFUND_PAYLOAD),
}


class ChannelState(BatchModel):
    """A channel's snapshot as receipts and corrective challenges carry it (`extra.channelState`)."""

    channel_id: Bytes32
    balance: Amount
    total_claimed: Amount
    withdraw_requested_at: Counter = 0
    refund_nonce: Counter = 0
    charged_cumulative_amount: Amount | None = None

    def dump(self) -> dict[str, Any]:
        # The spec writes the refund nonce as text and the withdrawal time as a number.
        data = super().dump()
        data["refundNonce"] = str(self.refund_nonce)
        return data


class VoucherState(BatchModel):
    """The latest voucher the server holds, so a client can check it before resyncing."""

    signed_max_claimable: Amount | None = None
    signature: Signature | None = None


class BatchExtra(BatchModel):
    """The `extra` of a batch-settlement `PaymentRequirements`."""

    name: DomainText
    version: DomainText
    receiver_authorizer: Address
    withdraw_delay: int = Field(ge=MIN_WITHDRAW_DELAY_SECONDS, le=MAX_WITHDRAW_DELAY_SECONDS)
    asset_transfer_method: Literal["eip3009", "permit2"] | None = None
    min_deposit: Amount | None = None
    channel_state: ChannelState | None = None
    voucher_state: VoucherState | None = None

    @field_validator("receiver_authorizer")
    @classmethod
    def _not_zero(cls, value: str) -> str:
        if is_zero_address(value):
            raise ValueError("must not be the zero address: claims and refunds need a signer")
        return value


class BatchReceiptExtra(BatchModel):
    """The `extra` of a batch-settlement receipt (`_meta["x402/payment-response"]`)."""

    charged_amount: Amount | None = None
    channel_state: ChannelState | None = None
    voucher_state: VoucherState | None = None


class BatchPaymentPayload(WireModel):
    """A v2 payment whose `accepted.scheme` is `batch-settlement`."""

    x402_version: Literal[2] = 2
    resource: ResourceInfo | None = None
    accepted: PaymentRequirements
    payload: DepositPayload | VoucherPayload | RefundPayload = Field(discriminator="type")
    extensions: dict[str, Any] | None = None


def parse_batch_payload(raw: Any) -> BatchPayload:
    """The inner `payload` of a batch-settlement payment, by its `type`.

    Raises:
        MalformedPayment: naming the field, with the spec's reason for the payload's type.
    """
    if not isinstance(raw, dict):
        raise MalformedPayment("the payload must be a JSON object", reason=reasons.INVALID_PAYLOAD_TYPE)
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in _PAYLOADS:
        raise MalformedPayment(
            f"payload.type is {shown(repr(kind), 40)}; expected deposit, voucher or refund",
            reason=reasons.INVALID_PAYLOAD_TYPE,
        )
    model, reason = _PAYLOADS[kind]
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise MalformedPayment(f"the {kind} payload's {validation_error_text(exc)}", reason=reason) from None


def parse_batch_payment(raw: Any) -> BatchPaymentPayload:
    """A whole batch-settlement payment as it arrives (object, JSON or base64 of JSON), bounded.

    Raises:
        MalformedPayment: naming the first thing wrong with it.
    """
    data = read_payment_object(raw)
    if type(data.get("x402Version")) is not int or data["x402Version"] != 2:
        raise MalformedPayment("batch-settlement payments need x402Version 2", reason="invalid_x402_version")
    payload = parse_batch_payload(data.get("payload"))
    try:
        # The payload goes in parsed, so its errors carry its own reason (above).
        return BatchPaymentPayload.model_validate({**data, "payload": payload})
    except ValidationError as exc:
        raise MalformedPayment(f"the payment's {validation_error_text(exc)}") from None


def parse_batch_extra(extra: Any) -> BatchExtra:
    """The `extra` of batch-settlement requirements (ours, or a server's we pay).

    Raises:
        MalformedPayment: naming the field (reason `invalid_batch_settlement_evm_missing_eip712_domain`
            when the token's domain is missing).
    """
    if not isinstance(extra, dict):
        raise MalformedPayment("the requirements' extra must be an object")
    try:
        return BatchExtra.model_validate(extra)
    except ValidationError as exc:
        first = exc.errors()[0]["loc"]
        domain = bool(first) and first[0] in ("name", "version")
        raise MalformedPayment(
            f"the requirements' extra.{validation_error_text(exc)}",
            reason=reasons.MISSING_EIP712_DOMAIN if domain else reasons.INVALID_SCHEME,
        ) from None

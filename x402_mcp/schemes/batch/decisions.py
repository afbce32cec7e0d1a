"""What the batch-settlement rules decide (see `rules.decide`): plain values, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from . import reasons
from .wire import ChannelConfig, ChannelState, Deposit, Voucher, VoucherState


@dataclass(frozen=True, slots=True)
class Accept:
    """A paid call may run; on success charge at most `max_charge` (the price)."""

    kind: Literal["voucher", "deposit"]
    channel_id: str
    config: ChannelConfig
    voucher: Voucher
    base: int
    max_charge: int
    deposit: Deposit | None = None

    @property
    def ceiling(self) -> int:
        return self.base + self.max_charge


@dataclass(frozen=True, slots=True)
class AcceptRefund:
    """A cooperative refund: claim up to `voucher`'s ceiling, then return `amount` to the payer."""

    channel_id: str
    config: ChannelConfig
    voucher: Voucher
    amount: int
    refund_nonce: int


@dataclass(frozen=True, slots=True)
class Corrective:
    """The client's cumulative base is stale: answer with our state so it can resync."""

    channel_state: ChannelState
    voucher_state: VoucherState | None
    reason: str = reasons.CUMULATIVE_AMOUNT_MISMATCH
    message: str = "The voucher's cumulative amount does not match this channel's charges; resync and retry."


@dataclass(frozen=True, slots=True)
class Refuse:
    """Refused: `reason` is the spec's code, `message` a sentence for the payer."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """An EIP-1271 `isValidSignature(digest, signature)` to ask of the contract at `signer`;
    a refusal is `reason`."""

    signer: str
    digest: bytes
    signature: str
    reason: str


@dataclass(frozen=True, slots=True)
class NeedsChain:
    """Only the chain can answer: read the channel's state (`snapshot`), or ask each contract
    wallet in `signatures`; then decide again with what it said."""

    snapshot: bool = False
    signatures: tuple[SignatureCheck, ...] = ()


Decision = Accept | AcceptRefund | Corrective | Refuse | NeedsChain

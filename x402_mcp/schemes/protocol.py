"""The protocol every payment scheme implements, and the values it speaks in.

A scheme (x402's `exact`, `batch-settlement`, ...) on one network is one object
the payment flow asks six questions, in this order for a paid call:

1. `accepts(quote)`: the `accepts[]` entries it offers for a price (none
   while it cannot offer, e.g. a facilitator that cannot name its fee payer).
2. `parse(raw)` then `match(payload, offered, now=...)`: pure. Is this payload
   one of ours, which of our entries did it accept, who pays, at most how much,
   and under which key is it claimed once (`Matched`), or why not (`Refusal`).
3. `verify(matched)`: asks the backend and answers with a `Verdict`:
   - `Valid`: good; `settle` moves the money (before or after the tool runs,
     as the tool's settle order says);
   - `PaidAlready`: the money has moved already (the chain shows this very
     payment paid to us): record it, settle nothing, run the tool;
   - `Escrowed`: the payer's funds are held (a deposit made now, or a channel
     whose balance covers the voucher): run the tool, then `settle` commits the
     charge, which may send nothing at all; if the tool fails, `release`;
   - `RefundRequested`: do not run the tool; `settle` performs the refund and
     its receipt is the answer;
   - `Refusal`: refuse with a reason code and a sentence;
   - `Correction`: refuse, and answer with these corrected requirements (a stale
     voucher gets the channel's state in `extra.channelState`/`voucherState`).
4. `settle(matched, verdict, charge=...)`: executes what `verify` allowed and
   answers `Settled` (or `Refusal`). `charge` is what the call costs, never more
   than `matched.ceiling`; a scheme that cannot charge less (`exact`, whose
   authorization names one amount) is given its ceiling by the flow.
5. `receipt(settled)`: pure; the `_meta["x402/payment-response"]` body.
6. `reconcile(payload, requirements)`: what the chain says about a payment whose
   settlement was cut short (it may have moved money): `OnChain`.

`release(matched, verdict)` gives back what `verify` reserved when the tool did
not run or failed (a channel's pending charge); `exact` reserves nothing.

Rules every implementation keeps:
- `parse`, `match` and `receipt` do no I/O and read no clock (`now` is given).
- The I/O methods use the backends the scheme object was built with; a backend
  refusal is an answer (`Refusal`), a backend failure raises `SettlementError`
  (then the payment may have moved money: the flow keeps it for `reconcile`).
- Requirements a scheme checks a payment against are always *ours* (rebuilt by
  `accepts`), never the payer's echo.
- A scheme never touches the ledger: the flow records what the scheme answered.

The core never names a scheme: `SchemeRegistry` (see `registry.py`) finds the
scheme for a payload's `accepted.scheme` and network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar, runtime_checkable

from ..core.wire import PaymentRequirements, SettleResponse
from ..errors import Refusal

__all__ = [
    "Correction",
    "Escrowed",
    "Matched",
    "OnChain",
    "PaidAlready",
    "Quote",
    "RefundRequested",
    "Refusal",
    "Scheme",
    "Settleable",
    "Settled",
    "Valid",
    "Verdict",
]

PayloadT = TypeVar("PayloadT")


class Quote(Protocol):
    """The facts of one quoted price a scheme builds its requirements from.

    A stored payment request has these fields; a scheme reads no other. `price`
    is in atomic units of `asset` and is the ceiling: a dynamic price may charge less.
    `network`, `asset` and `pay_to` are the server's own terms; a scheme for
    another network (Solana) offers its own payee and token at the same price.
    """

    @property
    def id(self) -> str: ...

    @property
    def price(self) -> int: ...

    @property
    def network(self) -> str: ...

    @property
    def asset(self) -> str: ...

    @property
    def pay_to(self) -> str: ...

    @property
    def max_timeout_seconds(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Matched(Generic[PayloadT]):
    """A payload that is one of ours, checked against our requirements without the chain.

    `requirements` is our entry it accepted (what `verify` and `settle` are given).
    `payer` is who pays, or "" when only the backend can say (a Solana transaction).
    `ceiling` is the most this payment can be charged, in atomic units.
    `key` identifies the payment whatever request it is presented for, as the
    ledger's `PaymentKey` fields (network, account, nonce): two payloads with one
    key pay once. `signature_checked` is False when only the chain can judge the
    signature (a contract wallet): nothing may be recorded in `payer`'s name
    before `verify` said it is valid.
    """

    payload: PayloadT
    requirements: PaymentRequirements
    payer: str
    ceiling: int
    key: tuple[str, str, str]
    signature_checked: bool = True


@dataclass(frozen=True, slots=True)
class Valid:
    """The payment is good; `settle` moves the money (before or after the tool, per its settle order)."""

    payer: str


@dataclass(frozen=True, slots=True)
class PaidAlready:
    """The money has already moved to us in `transaction` (this very payment, submitted by
    someone else first): record it as paid, run the tool, settle nothing."""

    payer: str
    transaction: str


@dataclass(frozen=True, slots=True)
class Escrowed:
    """The payer's funds are held for us, up to `ceiling`: run the tool, then `settle`
    commits the charge (possibly without a chain call); if the tool fails, `release`.

    `transaction` is the deposit made now ("" when an existing balance covers it);
    `state` is the scheme's state after the reservation (a channel's balance and
    cumulative charge), for the receipt.
    """

    payer: str
    ceiling: int
    transaction: str = ""
    state: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RefundRequested:
    """The payer asks for its unspent funds back: do not run the tool; `settle` refunds
    (`amount` when the payer named one, else everything unspent) and its receipt is the answer."""

    payer: str
    amount: int | None = None


@dataclass(frozen=True, slots=True)
class Correction:
    """Refuse, and challenge again with `requirements`: ours, corrected with what the payer
    must know to pay (a channel's state for a stale voucher)."""

    refusal: Refusal
    requirements: tuple[PaymentRequirements, ...]


Verdict = Valid | PaidAlready | Escrowed | RefundRequested | Refusal | Correction
"""What `verify` says about a matched payment (see the module's docstring)."""

Settleable = Valid | Escrowed | RefundRequested
"""The verdicts `settle` accepts (`PaidAlready` needs no settling)."""


@dataclass(frozen=True, slots=True)
class Settled:
    """What a settlement did: `amount` atomic units charged to `payer` on `network`, in
    `transaction` ("" when nothing was sent, e.g. a voucher's charge committed locally).

    `extra` is the scheme's part of the receipt (`chargedAmount`, `channelState`).
    """

    transaction: str
    network: str
    payer: str
    amount: int
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OnChain:
    """What the chain says about one payment (see `Scheme.reconcile`).

    `status` is `"unused"` (it moved nothing and may still be settled), `"settled"`
    (`tx_hash` paid the requirements, `amount` atomic units), `"canceled"` (the payer
    canceled it: it never will move money), `"used_elsewhere"` (used, but no
    transaction paying these requirements was found: never record it as paid), or
    `"unknown"` (this scheme or backend cannot read the chain).
    """

    status: Literal["unused", "settled", "canceled", "used_elsewhere", "unknown"]
    tx_hash: str | None = None
    amount: int | None = None


@runtime_checkable
class Scheme(Protocol[PayloadT]):
    """One payment scheme on one network (see the module's docstring for the contract).

    `scheme` is its wire name (`accepted.scheme`), `caip2` the network it takes payments
    on; the two are its key in a `SchemeRegistry`. (Named so that an implementation keeps
    its own `network` object, as `Network` and `SolanaNetwork` have a `caip2` too.)
    """

    @property
    def scheme(self) -> str: ...

    @property
    def caip2(self) -> str: ...

    def parse(self, raw: Mapping[str, Any]) -> PayloadT | Refusal:
        """The typed payload of a decoded `x402/payment` object, or why it is not one."""
        ...

    async def accepts(self, quote: Quote) -> Sequence[PaymentRequirements]:
        """The `accepts[]` entries offered for `quote`, in order of preference; none while
        this scheme cannot take payments (it says why in the log)."""
        ...

    def match(
        self, payload: PayloadT, offered: Sequence[PaymentRequirements], *, now: float
    ) -> Matched[PayloadT] | Refusal:
        """Which of `offered` (ours, from `accepts`) the payload accepted, and whether it
        fits it, at unix time `now`; pure."""
        ...

    async def verify(self, matched: Matched[PayloadT]) -> Verdict:
        """Ask the backend; never moves the payee's money, but may take escrow (`Escrowed`).

        Raises:
            SettlementError: the backend failed (a deposit may have been sent).
        """
        ...

    async def settle(
        self, matched: Matched[PayloadT], verdict: Settleable, *, charge: int
    ) -> Settled | Refusal:
        """Move or commit `charge` (at most `matched.ceiling`), or refund for `RefundRequested`.

        Raises:
            SettlementError: the backend failed; the money may have moved (reconcile).
        """
        ...

    async def release(self, matched: Matched[PayloadT], verdict: Settleable) -> None:
        """Give back what `verify` reserved; the tool did not run or failed."""
        ...

    def receipt(self, settled: Settled) -> SettleResponse:
        """The `x402/payment-response` body for `settled`; pure."""
        ...

    async def reconcile(self, payload: PayloadT, requirements: PaymentRequirements) -> OnChain:
        """What the chain says about `payload` paying `requirements` (ours).

        Raises:
            SettlementError: the chain could not be read; nothing is known.
        """
        ...

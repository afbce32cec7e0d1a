"""`PaymentEvent`: what happened to one payment, as hooks, spans and metrics see it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

EventKind = Literal["quoted", "paid", "redeemed", "refused", "settlement_failed", "reconciled"]
EVENT_KINDS: tuple[EventKind, ...] = (
    "quoted",
    "paid",
    "redeemed",
    "refused",
    "settlement_failed",
    "reconciled",
)


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    """One payment event, emitted once the ledger has recorded it.

    Attributes:
        kind: `quoted` (a payment request was issued), `paid` (a settlement was
            recorded), `redeemed` (a paid request was consumed by a successful run),
            `refused` (a payment or request id was not accepted), `settlement_failed`
            (the backend refused or failed a settlement), `reconciled` (reconciliation
            concluded an interrupted settlement from the chain: `paid` says how).
        request_id: the payment request (None for a refusal that names none).
        tool: the paid tool.
        amount: atomic units of the asset (the request's price; for `paid` the amount settled).
        asset: the token address, network: its CAIP-2 network.
        scheme: the x402 scheme (`exact`), when known.
        payer: who paid (`paid`, `reconciled`), when known.
        tx_hash: the settlement transaction (`paid`, `reconciled`), when known.
        reason: the x402 reason code (`refused`, `settlement_failed`).
        paid: for `reconciled`, whether the chain showed the request paid.
        at: when it happened (Unix seconds, the gate's clock).
    """

    kind: EventKind
    request_id: str | None
    tool: str
    amount: int | None = None
    asset: str | None = None
    network: str | None = None
    scheme: str | None = None
    payer: str | None = None
    tx_hash: str | None = None
    reason: str | None = None
    paid: bool | None = None
    at: float = 0.0

"""What both `exact` schemes make of a backend's answer, and the receipt they both write.

An `exact` payment names one amount, so it charges exactly its ceiling, and a
backend refuses it with a reason code and a sentence of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...core.claims import payment_key
from ...core.text import shown
from ...core.wire import PaymentRequirements, ReceivedPayment, SettleResponse
from ...errors import Refusal, payment_error_for
from ..protocol import Settled
from ..registry import NETWORK_MISMATCH

__all__ = ["backend_refusal", "check_whole_charge", "claim_key", "exact_receipt", "offered_on"]


def offered_on(caip2: str, offered: Sequence[PaymentRequirements]) -> PaymentRequirements | Refusal:
    """Our `exact` entry on `caip2` among `offered`, or a refusal when there is none."""
    for entry in offered:
        if entry.scheme == "exact" and entry.network == caip2:
            return entry
    return Refusal(NETWORK_MISMATCH, f"No 'exact' payment on {shown(caip2)} is offered for this request.")


def backend_refusal(reason: str | None, message: str | None) -> Refusal:
    """A backend's refusal as ours: its words are bounded and made safe to show (they
    come from a remote facilitator), and a missing reason reads `payment_rejected`."""
    return Refusal.of(payment_error_for(reason, message))


def check_whole_charge(ceiling: int, charge: int) -> None:
    """An `exact` payment moves its whole amount: any other charge is the caller's bug.

    Raises:
        ValueError: `charge` is not the payment's `ceiling`.
    """
    if charge != ceiling:
        raise ValueError(f"an exact payment settles its whole amount ({ceiling}); it cannot charge {charge}")


def exact_receipt(settled: Settled) -> SettleResponse:
    """The `x402/payment-response` body: the transaction, network, payer and amount charged."""
    return SettleResponse(
        success=True,
        transaction=settled.transaction,
        network=settled.network,
        payer=settled.payer or None,
        amount=str(settled.amount),
    )


def claim_key(payload: ReceivedPayment, requirements: PaymentRequirements) -> tuple[str, str, str]:
    """`Matched.key` of an `exact` payment: the ledger's `PaymentKey` fields (see `claims`)."""
    key = payment_key(payload, requirements)
    return key.network, key.payer, key.nonce

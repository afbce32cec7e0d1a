"""Before a refused payment's request is payable again: did its authorization move money?

A backend's refusal is its word, not the chain's. A node may report a mined
transfer as reverted; someone may have submitted the payer's authorization
first (front-running), so that our own transaction reverts while the payer's
money did reach the payee; a facilitator may misreport. Letting the payer pay
again after any of these charges them twice. So every path that would put a
request back to `issued` (collecting, and reconciliation) asks the token first,
through `authorization_on_chain`, and `may_release` says what that answer allows.
"""

from __future__ import annotations

from ..core.wire import (
    AnyPaymentPayload,
    PaymentRequirements,
    ReceivedPayment,
    SchemePaymentPayload,
    SvmPaymentPayload,
)
from .backends import ChainLookup, backend_failures
from .protocol import OnChain

__all__ = ["RELEASABLE", "authorization_on_chain", "may_release"]

RELEASABLE = frozenset({"unused", "canceled", "unknown"})
"""What the chain may say for a request to be payable again.

`unused` and `canceled`: the authorization moved nothing (and a canceled one never
will). `unknown`: the backend cannot read the chain at all (a facilitator without
an `rpc_url`, a Solana payment), so its own refusal is all there is, as its word
is all there is for a success. `settled` is honoured as the payment, whoever sent
it; `used_elsewhere` (used, but by no transaction we can match to this request)
keeps the request `settling` for reconciliation.
"""


def may_release(found: OnChain) -> bool:
    """Whether a refused payment's request may go back to `issued`, given what the chain says."""
    return found.status in RELEASABLE


async def authorization_on_chain(
    settlement: object, payload: ReceivedPayment | AnyPaymentPayload, requirements: PaymentRequirements
) -> OnChain:
    """What the token says about `payload`'s authorization, through `settlement`'s `lookup`:
    `authorizationState(payer, nonce)` and, when used, the transaction that used it.

    `OnChain("unknown")` when `settlement` cannot read the chain.

    Raises:
        SettlementError: the node failed or is unreachable: nothing is known, so the
            caller must keep the request `settling`.
    """
    if isinstance(payload, SvmPaymentPayload | SchemePaymentPayload) or not isinstance(
        settlement, ChainLookup
    ):
        return OnChain("unknown")
    with backend_failures("read the authorization on chain"):
        return await settlement.lookup(payload, requirements)

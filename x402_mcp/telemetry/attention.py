"""What in a ledger awaits a person's attention: settlements cut short, whose settler is
presumed gone, that reconciliation has yet to finish.

A read-only query over the ledger, shared by the reconciler (which finishes them), the
operator page and `x402-mcp ledger pending` (which list them).
"""

from __future__ import annotations

from ..core.lifecycle import State
from ..ledger.base import Ledger, Owner, PaymentRequest


async def awaiting_reconciliation(
    ledger: Ledger, *, now: float, grace_seconds: float, limit: int = 1000, owner: Owner | None = None
) -> list[PaymentRequest]:
    """Requests in `settling` (of `owner`, when given) whose settler is presumed gone at `now`."""
    settling = await ledger.requests(states=[State.SETTLING], limit=limit, owner=owner)
    return [request for request in settling if await _stale(ledger, request, now, grace_seconds)]


async def _stale(ledger: Ledger, request: PaymentRequest, now: float, grace_seconds: float) -> bool:
    if request.lease_until is not None:
        return request.lease_until < now
    # No settling lease: the audit line of the latest begin_settlement says when it started.
    began = [at for at, _, event, _ in await ledger.audit_trail(request.id) if event == "begin_settlement"]
    return not began or began[-1] + grace_seconds < now

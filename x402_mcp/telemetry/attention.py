"""What in a ledger awaits a person's attention: settlements cut short, whose settler is
presumed gone, that reconciliation has yet to finish.

A read-only query over the ledger, shared by the reconciler (which finishes them), the
operator page and `x402-mcp ledger pending` (which list them).
"""

from __future__ import annotations

from ..core.states import PaymentRequest, State, settler_presumed_gone
from ..ledger.base import Ledger, Owner


async def awaiting_reconciliation(
    ledger: Ledger, *, now: float, grace_seconds: float, limit: int = 1000, owner: Owner | None = None
) -> list[PaymentRequest]:
    """Requests in `settling` (of `owner`, when given) whose settler is presumed gone at `now`
    (`states.settler_presumed_gone`, read off each row's lease and `settling_since`)."""
    settling = await ledger.requests(states=[State.SETTLING], limit=limit, owner=owner)
    return [request for request in settling if settler_presumed_gone(request, now, grace_seconds)]

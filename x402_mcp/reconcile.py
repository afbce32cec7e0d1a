"""Reconciliation: finishing settlements that a crash or a timeout cut short.

A request in `settling` holds the payer's signed authorization. If the process
that was settling it died (or its node timed out), the ledger alone cannot tell
whether money moved; the chain can. For each such request whose settler is
presumed gone (its settling lease lapsed, or it began settling more than
`grace_seconds` ago), the `Reconciler` asks the settlement backend:

- the authorization was used by a transaction that paid these requirements:
  record that settlement, so the request is paid and redeemable;
- it is unused (and still valid): finish the job and settle it now, since the
  payer signed it for exactly this request; the request is then paid and
  redeemable, and the payer's retry (or the page) redeems it;
- it was canceled, expired unused, or the backend refuses it: the request
  goes back to `issued`, payable again, with an audit line saying why;
- the backend cannot tell (no `lookup`, a node failure, an authorization used
  by a transaction we cannot find): leave it in `settling`, listed by
  `x402-mcp ledger pending` as awaiting reconciliation. Never guess.

Settling twice is impossible by construction: the token accepts one
authorization once, and the ledger records one transaction once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from .challenge import requirements_for
from .errors import LedgerError, PaymentError, SettlementError, StateConflict
from .ledger.base import Ledger, PaymentRequest, SettlementRecord
from .lifecycle import Event, State
from .networks import Asset
from .settlement.base import ChainLookup, OnChain, Settlement
from .settlement.checks import NONCE_ALREADY_USED
from .wire import AnyPaymentPayload, PaymentRequirements, parse_payment_payload

logger = logging.getLogger("x402_mcp")

__all__ = ["Reconciler", "Reconciliation", "awaiting_reconciliation"]


@dataclass(slots=True)
class Reconciliation:
    """The ids a pass moved to paid, back to issued, and left awaiting reconciliation."""

    settled: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)


async def awaiting_reconciliation(
    ledger: Ledger, *, now: float, grace_seconds: float, limit: int = 1000
) -> list[PaymentRequest]:
    """Requests in `settling` whose settler is presumed gone at `now`."""
    settling = await ledger.requests(states=[State.SETTLING], limit=limit)
    return [request for request in settling if await _stale(ledger, request, now, grace_seconds)]


async def _stale(ledger: Ledger, request: PaymentRequest, now: float, grace_seconds: float) -> bool:
    if request.lease_until is not None:
        return request.lease_until < now
    # No settling lease: the audit line of the latest begin_settlement says when it started.
    began = [at for at, _, event, _ in await ledger.audit_trail(request.id) if event == "begin_settlement"]
    return not began or began[-1] + grace_seconds < now


class Reconciler:
    """Drives stale `settling` requests of `ledger` to `paid` or back to `issued`.

    Args:
        grace_seconds: how long a settlement may run before it is presumed cut
            short; keep it above the backend's receipt timeout.
        clock: unix time.
    """

    def __init__(
        self,
        ledger: Ledger,
        settlement: Settlement,
        asset: Asset,
        *,
        grace_seconds: float = 300.0,
        clock: Callable[[], float],
    ) -> None:
        self.ledger = ledger
        self.settlement = settlement
        self.asset = asset
        self.grace_seconds = grace_seconds
        self.clock = clock

    async def run(self, *, limit: int = 100) -> Reconciliation:
        """One pass over at most `limit` stale settlements. Backend failures leave rows pending."""
        outcome = Reconciliation()
        stale = await awaiting_reconciliation(
            self.ledger, now=self.clock(), grace_seconds=self.grace_seconds, limit=limit
        )
        for request in stale:
            try:
                done = await self._reconcile(request)
            except SettlementError as exc:
                logger.warning(
                    "could not reconcile %s: the settlement backend failed", request.id, exc_info=exc
                )
                done = None
            except StateConflict:
                continue  # another replica reconciled it first
            bucket = {True: outcome.settled, False: outcome.released, None: outcome.pending}[done]
            bucket.append(request.id)
        if stale:
            logger.info(
                "reconciled %d settlements: %d paid, %d payable again, %d awaiting reconciliation",
                len(stale),
                len(outcome.settled),
                len(outcome.released),
                len(outcome.pending),
            )
        return outcome

    async def _reconcile(self, request: PaymentRequest) -> bool | None:
        """True: now paid; False: back to issued; None: left awaiting reconciliation."""
        try:
            payload = parse_payment_payload(request.payload or "")
        except PaymentError:
            return await self._release(request, "the stored payment payload is unreadable")
        requirements = requirements_for(request, self.asset)
        lookup = self.settlement if isinstance(self.settlement, ChainLookup) else None
        if lookup is not None:
            found = await lookup.lookup(payload, requirements)
            if found.status != "unused":
                return await self._conclude(request, payload, found)
        receipt = await self.settlement.settle(payload, requirements)
        if receipt.success:
            amount = int(receipt.amount) if receipt.amount else int(payload.payload.authorization.value)
            return await self._record(request, payload, requirements, receipt.transaction, amount)
        if receipt.error_reason == NONCE_ALREADY_USED:
            # Used meanwhile (a transaction of the dead settler mined late): ask the chain again.
            if lookup is not None:
                return await self._conclude(request, payload, await lookup.lookup(payload, requirements))
            await self._note(request, "authorization used, but this backend cannot find the transaction")
            return None
        return await self._release(request, f"settling it now failed: {receipt.error_reason}")

    async def _conclude(
        self, request: PaymentRequest, payload: AnyPaymentPayload, found: OnChain
    ) -> bool | None:
        if found.status == "settled" and found.tx_hash is not None and found.amount is not None:
            requirements = requirements_for(request, self.asset)
            return await self._record(request, payload, requirements, found.tx_hash, found.amount)
        if found.status == "canceled":
            return await self._release(request, "the payer canceled the authorization")
        await self._note(request, f"authorization {found.status}; no transaction paying this request found")
        return None

    async def _record(
        self,
        request: PaymentRequest,
        payload: AnyPaymentPayload,
        requirements: PaymentRequirements,
        tx_hash: str,
        amount: int,
    ) -> bool | None:
        if amount < request.price or requirements.pay_to.lower() != request.pay_to.lower():
            # Second line of defence: never mark paid what did not pay this request in full.
            await self._note(request, f"transaction {tx_hash} does not pay this request in full")
            return None
        record = SettlementRecord(
            tx_hash=tx_hash,
            payer=payload.payload.authorization.from_,
            amount=amount,
            asset=request.asset,
            network=request.network,
            settled_at=self.clock(),
        )
        try:
            await self.ledger.transition(request.id, Event.SETTLED, now=self.clock(), settlement=record)
        except StateConflict:
            raise
        except LedgerError as exc:
            # The transaction is already recorded for another request: a human must look.
            logger.error("reconciling %s: %s", request.id, exc)
            await self._note(request, str(exc))
            return None
        logger.info("reconciled %s: paid by %s", request.id, tx_hash)
        return True

    async def _release(self, request: PaymentRequest, why: str) -> bool:
        await self.ledger.transition(request.id, Event.SETTLEMENT_FAILED, now=self.clock())
        await self.ledger.audit(request.id, "reconciled", f"payable again: {why}", now=self.clock())
        return False

    async def _note(self, request: PaymentRequest, why: str) -> None:
        await self.ledger.audit(request.id, "awaiting_reconciliation", why, now=self.clock())

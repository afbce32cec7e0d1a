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
- it was canceled, or the backend refuses it and the token shows the
  authorization unused (expired, say): the request goes back to `issued`,
  payable again, with an audit line saying why (a refusal of an authorization
  the token shows used is never released: see `schemes.outcome`);
- the backend cannot tell (no `lookup`, or one answering `"unknown"` because
  it cannot read the chain; a node failure; an authorization used
  by a transaction we cannot find; a stored payload that cannot be read):
  leave it in `settling`, listed by
  `x402-mcp ledger pending` as awaiting reconciliation. Never guess.

Settling twice is impossible by construction: the token accepts one
authorization once, and the ledger records one transaction once.

A Solana payment cannot be looked up (we do not read Solana, and facilitators
offer no status call), so it is sent to its facilitator once more: a
transaction that never landed settles now; one that did is refused as already
processed, and the request is left awaiting reconciliation for a person to
check on an explorer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..core.networks import Asset
from ..core.states import Event, StateConflict
from ..core.wire import (
    AnyPaymentPayload,
    PaymentRequirements,
    SchemePaymentPayload,
    SvmPaymentPayload,
    parse_payment_payload,
)
from ..errors import LedgerError, PaymentError, SettlementError
from ..ledger.base import Ledger, Owner, PaymentRequest, SettlementRecord
from ..schemes.exact.evm import requirements_for
from ..schemes.exact.solana import solana_payee_on
from ..schemes.outcome import authorization_on_chain, may_release
from ..settlement.base import ChainLookup, OnChain, Settlement, backend_failures
from ..settlement.checks import NONCE_ALREADY_USED
from ..settlement.solana import Solana
from ..telemetry import Telemetry
from ..telemetry.attention import awaiting_reconciliation

logger = logging.getLogger("x402_mcp")

__all__ = ["Reconciler", "Reconciliation", "awaiting_reconciliation"]


@dataclass(slots=True)
class Reconciliation:
    """The ids a pass moved to paid, back to issued, and left awaiting reconciliation."""

    settled: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)


class Reconciler:
    """Drives stale `settling` requests of `ledger` to `paid` or back to `issued`.

    Args:
        grace_seconds: how long a settlement may run before it is presumed cut
            short; keep it above the backend's receipt timeout.
        clock: unix time.
        owner: the server whose settlements these are: another server's request sharing
            the ledger is neither settled nor released by this one (it holds another
            payee's or network's authorization, for that server's backend to finish).
    """

    def __init__(
        self,
        ledger: Ledger,
        settlement: Settlement,
        asset: Asset,
        *,
        grace_seconds: float = 300.0,
        clock: Callable[[], float],
        solana: Sequence[Solana] = (),
        owner: Owner | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.ledger = ledger
        self.owner = owner
        self.telemetry = telemetry or Telemetry()
        self.settlement = settlement
        self.asset = asset
        self.solana = tuple(solana)
        self.grace_seconds = grace_seconds
        self.clock = clock

    async def run(self, *, limit: int = 100) -> Reconciliation:
        """One pass over at most `limit` stale settlements. Backend failures leave rows pending."""
        outcome = Reconciliation()
        stale = await awaiting_reconciliation(
            self.ledger, now=self.clock(), grace_seconds=self.grace_seconds, limit=limit, owner=self.owner
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
            # Without the payload the chain cannot be asked whether it moved money: a person must look.
            await self._note(request, "the stored payment payload is unreadable")
            return None
        if isinstance(payload, SvmPaymentPayload):
            return await self._reconcile_solana(request, payload)
        if isinstance(payload, SchemePaymentPayload):
            # A batch-settlement charge cut short moved no money (its deposit is the payer's escrow).
            await self._note(request, f"a {payload.accepted.scheme} payment is left for a person to look at")
            return None
        requirements = requirements_for(request, self.asset)
        lookup = self.settlement if isinstance(self.settlement, ChainLookup) else None
        if lookup is not None:
            with backend_failures("read the authorization on chain"):
                found = await lookup.lookup(payload, requirements)
            if found.status not in ("unused", "unknown"):  # unknown: as if it had no lookup
                return await self._conclude(request, payload, found)
        with backend_failures("settle"):
            receipt = await self.settlement.settle(payload, requirements)
        if receipt.success:
            amount = int(receipt.amount) if receipt.amount else int(payload.payload.authorization.value)
            payer = receipt.payer or payload.payload.authorization.from_
            return await self._record(request, requirements, receipt.transaction, amount, payer)
        if receipt.error_reason == NONCE_ALREADY_USED:
            # Used meanwhile (a transaction of the dead settler mined late): ask the chain again.
            found = OnChain("unknown")
            if lookup is not None:
                with backend_failures("read the authorization on chain"):
                    found = await lookup.lookup(payload, requirements)
            if found.status != "unknown":
                return await self._conclude(request, payload, found)
            await self._note(request, "authorization used, but this backend cannot find the transaction")
            return None
        # Refused: but a node may misreport a mined transfer, and someone may have used the
        # authorization meanwhile; only an authorization the token shows unused is released.
        found = await authorization_on_chain(self.settlement, payload, requirements)
        if found.status == "settled":
            return await self._conclude(request, payload, found)
        if not may_release(found):
            await self._note(
                request,
                f"settling it now failed ({receipt.error_reason}), yet the authorization is {found.status}",
            )
            return None
        return await self._release(request, f"settling it now failed: {receipt.error_reason}")

    async def _reconcile_solana(self, request: PaymentRequest, payload: SvmPaymentPayload) -> bool | None:
        network = payload.accepted.network
        option = solana_payee_on(network, self.solana)
        requirements = await option.quote(request) if option is not None else None
        if option is None or requirements is None:
            await self._note(request, f"no facilitator for {network} is available to settle it")
            return None
        with backend_failures("settle"):
            receipt = await option.settlement.settle(payload, requirements)
        if receipt.success:
            amount = int(receipt.amount) if receipt.amount else request.price
            return await self._record(request, requirements, receipt.transaction, amount, receipt.payer or "")
        await self._note(
            request,
            f"the Solana transaction may have landed before (settling it again failed: "
            f"{receipt.error_reason}); check the payer's transactions on an explorer",
        )
        return None

    async def _conclude(
        self, request: PaymentRequest, payload: AnyPaymentPayload, found: OnChain
    ) -> bool | None:
        if found.status == "settled" and found.tx_hash is not None and found.amount is not None:
            requirements = requirements_for(request, self.asset)
            payer = payload.payload.authorization.from_
            return await self._record(request, requirements, found.tx_hash, found.amount, payer)
        if found.status == "canceled":
            return await self._release(request, "the payer canceled the authorization")
        await self._note(request, f"authorization {found.status}; no transaction paying this request found")
        return None

    async def _record(
        self,
        request: PaymentRequest,
        requirements: PaymentRequirements,
        tx_hash: str,
        amount: int,
        payer: str,
    ) -> bool | None:
        ours = requirements.network == request.network
        if amount < request.price or (ours and requirements.pay_to.lower() != request.pay_to.lower()):
            # Second line of defence: never mark paid what did not pay this request in full.
            await self._note(request, f"transaction {tx_hash} does not pay this request in full")
            return None
        record = SettlementRecord(
            tx_hash=tx_hash,
            payer=payer,
            amount=amount,
            asset=requirements.asset,
            network=requirements.network,
            settled_at=self.clock(),
        )
        try:
            await self.ledger.transition(
                request.id, Event.SETTLED, now=self.clock(), settlement=record, owner=self.owner
            )
        except StateConflict:
            raise
        except LedgerError as exc:
            # The transaction is already recorded for another request: a human must look.
            logger.error("reconciling %s: %s", request.id, exc)
            await self._note(request, str(exc))
            return None
        logger.info("reconciled %s: paid by %s", request.id, tx_hash)
        self.telemetry.reconciled(request, record, self.clock())
        return True

    async def _release(self, request: PaymentRequest, why: str) -> bool:
        await self.ledger.transition(request.id, Event.SETTLEMENT_FAILED, now=self.clock(), owner=self.owner)
        await self.ledger.audit(request.id, "reconciled", f"payable again: {why}", now=self.clock())
        self.telemetry.reconciled(request, None, self.clock())
        return False

    async def _note(self, request: PaymentRequest, why: str) -> None:
        await self.ledger.audit(request.id, "awaiting_reconciliation", why, now=self.clock())

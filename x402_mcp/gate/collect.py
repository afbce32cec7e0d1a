"""Collecting a payment for a payment request: check, verify, settle, record.

The gate (an agent's `_meta["x402/payment"]`) and the payment page (a browser
wallet, or an x402 HTTP client on the hosted URL) collect money the same way,
so both go through these functions: the ledger moves the request
`issued → settling → paid` (or back to `issued` when the backend refuses), and
every refusal is a `Refused` naming what was wrong.

Every payment goes through its scheme (`x402_mcp.schemes`), which the payment's
scheme and network pick from the registry: it matches, verifies and settles.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import anyio

from ..core.flow import payable_now, unknown_request
from ..core.money import format_usd
from ..core.networks import Asset, Network
from ..core.states import Event, PaymentKey, StateConflict, refusal_after_conflict
from ..core.wire import (
    PaymentRequirements,
    ReceivedPayment,
    SettleResponse,
)
from ..errors import (
    LedgerError,
    PaymentMismatch,
    PaymentReplayed,
    Refusal,
    Refused,
    SettlementError,
    payment_error_for,
)
from ..ledger.base import Ledger, Owner, PaymentRequest, SettlementRecord
from ..schemes.exact.evm import ExactEvm
from ..schemes.outcome import may_release
from ..schemes.protocol import (
    Correction,
    Escrowed,
    Matched,
    PaidAlready,
    RefundRequested,
    Scheme,
    Settled,
    Valid,
    Verdict,
)
from ..schemes.registry import SchemeRegistry, scheme_and_network
from ..settlement.base import Settlement
from ..settlement.solana import Solana
from ..telemetry import Telemetry

logger = logging.getLogger("x402_mcp")


class Collector:
    """Moves money for payment requests through one ledger and the settlement backends.

    Args:
        settlement: settles payments on `network` in `asset`.
        solana: Solana payees also accepted, each with its own facilitator.
        owner: the server whose requests these are (payee, network, asset): another
            server's request sharing the ledger is treated as unknown and never moved.
            None only for a ledger no other server shares.
    """

    def __init__(
        self,
        ledger: Ledger,
        settlement: Settlement,
        network: Network,
        asset: Asset,
        clock: Callable[[], float],
        *,
        solana: Sequence[Solana] = (),
        also: Sequence[Scheme[Any]] = (),
        owner: Owner | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.ledger = ledger
        self.also = tuple(also)
        self.owner = owner
        self.telemetry = telemetry or Telemetry()
        self.solana = tuple(solana)
        self.network = network
        self.asset = asset
        self.settlement = settlement
        self.clock = clock
        # Requests whose verification found their authorization already paid on chain (someone
        # submitted it first), by id, with that transaction: `settle` records it, sending nothing.
        self._paid_on_chain: dict[str, str] = {}
        # Receipts a scheme wrote itself (a channel's state after a charge), by request id, for
        # the answer of the run that settled it (`take_receipt`).
        self._receipts: dict[str, SettleResponse] = {}

    @property
    def settlement(self) -> Settlement:
        """The backend of the server's own network (its `exact` EVM scheme's)."""
        return self._settlement

    @settlement.setter
    def settlement(self, settlement: Settlement) -> None:
        # Every payment goes through its scheme: the registry is rebuilt around the new backend.
        self._settlement = settlement
        self.schemes = SchemeRegistry(
            [ExactEvm(self.network, self.asset, settlement), *self.solana, *getattr(self, "also", ())]
        )

    async def get(self, request_id: str) -> PaymentRequest | None:
        """Request `request_id` if this server quoted it; None for an unknown id and for
        another server's request (the two must look the same to a caller)."""
        return await self.ledger.get(request_id, owner=self.owner)

    def check_owned(self, request: PaymentRequest) -> None:
        """Refuse `request` as unknown (`Refused`) unless this server quoted it (for a request
        read without `get`, e.g. by the page); nothing is said of another server's request."""
        if self.owner is not None and not self.owner.owns(request):
            raise Refused(unknown_request(request.id), None)

    async def accepts(self, request: PaymentRequest) -> list[PaymentRequirements]:
        """Every way to pay `request`, as the registered schemes offer it: the EVM network
        first, then each Solana payee whose facilitator can currently name its fee payer."""
        return await self.schemes.accepts(request)

    def scheme_for(self, payload: ReceivedPayment, request: PaymentRequest | None) -> Scheme[Any]:
        """The registered scheme that takes `payload` (its scheme and network pick it).

        Raises:
            Refused: we accept no payments in that scheme on that network.
        """
        raw = payload.dump()
        named = scheme_and_network(raw)
        found = named if isinstance(named, Refusal) else self.schemes.lookup(*named)
        if not isinstance(found, Refusal):
            return found
        home = next(iter(self.schemes))
        if not isinstance(home.parse(raw), Refusal):
            # A payment of our own network's kind, for another network: its checks say what is wrong.
            return home
        network = named[1] if not isinstance(named, Refusal) else "that network"
        accepted = ", ".join(scheme.caip2 for scheme in self.schemes)
        raise Refused(
            PaymentMismatch(
                f"payments on {network} are not accepted here; pay on one of: {accepted}",
                reason="network_mismatch",
            ),
            request,
        )

    def scheme_of(self, matched: Matched[Any]) -> Scheme[Any]:
        """The registered scheme that matched `matched`."""
        found = self.schemes.lookup(matched.requirements.scheme, matched.requirements.network)
        if isinstance(found, Refusal):  # never: our own requirements name a registered scheme
            raise SettlementError(found.message)
        return found

    async def requirements(self, request: PaymentRequest, payload: ReceivedPayment) -> PaymentRequirements:
        """Our requirements for `request` in the scheme and on the network `payload` pays with.

        Raises:
            Refused: we accept no payments in that scheme on that network.
            SettlementError: the scheme cannot offer terms now (e.g. a Solana facilitator
                that cannot name its fee payer): a crash.
        """
        scheme = self.scheme_for(payload, request)
        offered = await scheme.accepts(request)
        if not offered:
            raise SettlementError(f"the {scheme.scheme} scheme on {scheme.caip2} cannot take payments now")
        return offered[0]

    def match(
        self, request: PaymentRequest, payload: ReceivedPayment, requirements: PaymentRequirements
    ) -> Matched[Any]:
        """`payload` checked against our `requirements` for `request` by its scheme, without the chain.

        Raises:
            Refused: it does not fit (the request is untouched).
        """
        matched = self.scheme_for(payload, request).match(payload, [requirements], now=self.clock())
        if isinstance(matched, Refusal):
            raise Refused(payment_error_for(matched.reason, matched.message), request)
        return matched

    async def collect(
        self,
        request: PaymentRequest,
        payload: ReceivedPayment,
        requirements: PaymentRequirements,
        *,
        decimals: int,
    ) -> PaymentRequest:
        """Check, verify and settle `payload` for `request`; return it paid.

        Raises:
            Refused: the payment does not fit the request, or the backend refused it.
            SettlementError / LedgerError: a backend failed (a crash, not the payer's fault).
        """
        request, matched = await self.begin(
            request, payload, requirements, price=request.price, decimals=decimals
        )
        verdict = await self.verify(request, matched)
        if not isinstance(verdict, (Valid, PaidAlready)):
            # A payment the page takes is paid now; one that holds funds or asks a refund is not one.
            await self.release(request, matched)
            raise Refused(PaymentMismatch("this payment cannot pay a request on the page"), request)
        return await self.settle(request, matched)

    async def begin(
        self,
        request: PaymentRequest,
        payload: ReceivedPayment,
        requirements: PaymentRequirements,
        *,
        price: int,
        decimals: int,
    ) -> tuple[PaymentRequest, Matched[Any]]:
        """Check the payment against the request, claim the payment for it, and claim the
        request for settling; the request as it now stands, and the payment as matched.

        The payment is claimed once its signature is known to be its payer's (by the
        scheme's pure checks, or for a contract wallet its verification first), so nobody
        takes someone else's nonce with a forged one; and before anything settles or runs.

        Raises:
            Refused: the payment does not fit, or was already presented for another request
                (`PaymentReplayed`; which one is not said: a paid id is a bearer capability).
        """
        self.check_owned(request)
        now = self.clock()
        refusal = payable_now(request, price=price, now=now, decimals=decimals)
        if refusal is not None:
            raise Refused(refusal, request)
        matched = self.match(request, payload, requirements)
        if not matched.signature_checked:
            # Only the chain can check this signature; a refusal here leaves the request untouched.
            verdict = await self.scheme_of(matched).verify(matched)
            if isinstance(verdict, Refusal):
                raise Refused(payment_error_for(verdict.reason, verdict.message), request)
        owner = await self.ledger.claim_payment(PaymentKey(*matched.key), request.id, now=now)
        if owner != request.id:
            raise Refused(
                PaymentReplayed(
                    "this payment was already presented for another payment request and pays for"
                    " that one only; sign a new payment for this one"
                ),
                request,
            )
        return await self.transition(request, Event.BEGIN_SETTLEMENT, payload=payload.to_json()), matched

    async def verify(self, request: PaymentRequest, matched: Matched[Any]) -> Verdict:
        """Have the payment's scheme verify it; its verdict, unless it refused.

        `PaidAlready` (someone submitted it first) is remembered for `settle` to record; after
        a refusal or a `Correction` the request is `issued` again.

        Raises:
            Refused: the scheme refused the payment.
            SettlementError / LedgerError: a crash (the request stays `settling` if the
                authorization may have moved money).
        """
        requirements = matched.requirements
        try:
            with self.telemetry.backend("verify", request, requirements.scheme) as verifying:
                verdict = await self.scheme_of(matched).verify(matched)
                refused = verdict.refusal if isinstance(verdict, Correction) else verdict
                if isinstance(refused, Refusal):
                    verifying.refused(payment_error_for(refused.reason, None).reason)
        except BaseException:
            # Our verification moves no money, but someone else may have used the authorization.
            with anyio.CancelScope(shield=True):
                try:
                    await self.release(request, matched)
                except Exception:
                    logger.warning("%s stays settling: the chain cannot say it moved nothing", request.id)
            raise
        if isinstance(verdict, PaidAlready):
            if len(self._paid_on_chain) >= _PAID_ON_CHAIN_LIMIT:
                self._paid_on_chain.clear()  # only a gas saving: `settle` would find it anyway
            self._paid_on_chain[request.id] = verdict.transaction
        elif isinstance(refused, Refusal):
            # The scheme weighed the chain already: nothing of this payment moved.
            await self.transition(request, Event.SETTLEMENT_FAILED)
            if not isinstance(verdict, Correction):  # a correction is answered by the flow
                raise Refused(payment_error_for(refused.reason, refused.message), await self.get(request.id))
        return verdict

    async def settle(
        self,
        request: PaymentRequest,
        matched: Matched[Any],
        *,
        verdict: Verdict | None = None,
        claim: tuple[float, str] | None = None,
    ) -> PaymentRequest:
        """Settle the payment through its scheme and record it: the request is `paid`, or with
        `claim` (`(lease_seconds, claim_id)`, for a call that goes on to run the tool)
        `redeeming` under that claim from the moment it is recorded, in the same write.

        Raises:
            Refused: the scheme refused the settlement (the request is `issued` again).
            SettlementError / LedgerError: a crash (the request stays `settling`).
        """
        # A SettlementError here leaves the request in `settling` with its payload:
        # the transaction may have been broadcast, so only the chain can tell.
        requirements = matched.requirements
        paid_in = self._paid_on_chain.pop(request.id, None)
        try:
            with self.telemetry.backend("settle", request, requirements.scheme) as settling:
                if paid_in is None:
                    settleable = verdict if isinstance(verdict, (Valid, Escrowed, RefundRequested)) else None
                    settled = await self.scheme_of(matched).settle(
                        matched, settleable or Valid(matched.payer), charge=matched.ceiling
                    )
                else:
                    # Already paid on chain (see `verify`): a transaction of ours could only revert.
                    settled = Settled(paid_in, requirements.network, matched.payer, matched.ceiling)
                if isinstance(settled, Refusal):
                    settling.refused(payment_error_for(settled.reason, None).reason)
        except (SettlementError, LedgerError):
            # Still `settling` (recorded by `begin`): reconciliation asks the chain.
            self.telemetry.settlement_failed(request, "backend_error", requirements.scheme, self.clock())
            raise
        if isinstance(settled, Refusal):
            # The scheme weighed the chain already: nothing of this payment moved.
            await self.transition(request, Event.SETTLEMENT_FAILED)
            refreshed = await self.get(request.id)
            error = payment_error_for(settled.reason, settled.message)
            self.telemetry.settlement_failed(request, error.reason, requirements.scheme, self.clock())
            raise Refused(error, refreshed)
        if settled.extra:
            self._receipts[request.id] = self.scheme_of(matched).receipt(settled)
        record = SettlementRecord(
            # A charge that sent nothing (a voucher) is recorded under the request it paid.
            tx_hash=settled.transaction or f"{requirements.scheme}:{request.id}",
            payer=settled.payer,
            amount=request.price,
            asset=requirements.asset,
            network=requirements.network,
            settled_at=self.clock(),
        )
        logger.info("settled %s for %r in %s", format_usd(request.price), request.tool, settled.transaction)
        if claim is None:
            recorded = await self.transition(request, Event.SETTLED, settlement=record)
        else:
            lease_seconds, claim_id = claim
            recorded = await self.transition(
                request,
                Event.SETTLED,
                settlement=record,
                lease_until=record.settled_at + lease_seconds,
                claim_id=claim_id,
            )
        self.telemetry.paid(recorded, record, requirements.scheme)  # recorded: now it may be told
        return recorded

    def take_receipt(self, request_id: str) -> SettleResponse | None:
        """The receipt the scheme wrote for `request_id`'s settlement, once (None: the default)."""
        return self._receipts.pop(request_id, None)

    async def release(
        self, request: PaymentRequest, matched: Matched[Any], verdict: Verdict | None = None
    ) -> None:
        """Make `request` payable again when nothing we did settled it (verification failed, or a
        `settle="after"` tool failed), unless the chain shows the payment used: then it stays
        `settling` for reconciliation. What the scheme held for it (`Escrowed`) goes back.
        """
        self._paid_on_chain.pop(request.id, None)
        scheme = self.scheme_of(matched)
        if isinstance(verdict, (Valid, Escrowed, RefundRequested)):
            await scheme.release(matched, verdict)
        try:
            found = await scheme.reconcile(matched.payload, matched.requirements)
        except SettlementError as kept:
            logger.warning("%s stays settling for reconciliation: %s", request.id, kept)
            return
        if may_release(found):
            await self.transition(request, Event.SETTLEMENT_FAILED)
        elif found.status != "settled":
            logger.warning(
                "%s stays settling for reconciliation: the chain shows its payment used (%s)",
                request.id,
                found.status,
            )

    async def transition(self, request: PaymentRequest, event: Event, **changes: Any) -> PaymentRequest:
        try:
            with self.telemetry.ledger_step(event.value, request.id):
                return await self.ledger.transition(
                    request.id, event, now=self.clock(), owner=self.owner, **changes
                )
        except StateConflict as conflict:
            raise Refused(refusal_after_conflict(conflict), None) from None


_PAID_ON_CHAIN_LIMIT = 1024

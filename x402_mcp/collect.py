"""Collecting a payment for a payment request: check, verify, settle, record.

The gate (an agent's `_meta["x402/payment"]`) and the payment page (a browser
wallet, or an x402 HTTP client on the hosted URL) collect money the same way,
so both go through these functions: the ledger moves the request
`issued → settling → paid` (or back to `issued` when the backend refuses), and
every refusal is a `Refused` naming what was wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio

from .errors import (
    PaymentError,
    PaymentExpired,
    PaymentInProgress,
    PaymentMismatch,
    PaymentReplayed,
    StateConflict,
    UnknownPaymentRequest,
    payment_error_for,
)
from .ledger.base import Ledger, PaymentRequest, SettlementRecord
from .lifecycle import Event, State
from .matching import match_payment
from .money import format_usd
from .networks import Network
from .settlement.base import Settlement
from .wire import AnyPaymentPayload, PaymentRequirements

logger = logging.getLogger("x402_mcp")


class Refused(Exception):
    """A `PaymentError`, with the request it concerns when that one is still payable."""

    def __init__(self, error: PaymentError, request: PaymentRequest | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.request = request


class Collector:
    """Moves money for payment requests through one ledger and one settlement backend."""

    def __init__(
        self, ledger: Ledger, settlement: Settlement, network: Network, clock: Callable[[], float]
    ) -> None:
        self.ledger = ledger
        self.settlement = settlement
        self.network = network
        self.clock = clock

    async def collect(
        self,
        request: PaymentRequest,
        payload: AnyPaymentPayload,
        requirements: PaymentRequirements,
        *,
        decimals: int,
    ) -> PaymentRequest:
        """Check, verify and settle `payload` for `request`; return it paid.

        Raises:
            Refused: the payment does not fit the request, or the backend refused it.
            SettlementError / LedgerError: a backend failed (a crash, not the payer's fault).
        """
        request = await self.begin(request, payload, requirements, price=request.price, decimals=decimals)
        await self.verify(request, payload, requirements)
        return await self.settle(request, payload, requirements)

    async def begin(
        self,
        request: PaymentRequest,
        payload: AnyPaymentPayload,
        requirements: PaymentRequirements,
        *,
        price: int,
        decimals: int,
    ) -> PaymentRequest:
        """Check the payment against the request and claim the request for settling."""
        now = self.clock()
        try:
            check_payable(request, price, now, decimals)
            match_payment(payload, requirements, self.network, now=now)
        except PaymentError as error:
            raise Refused(error, request) from None
        return await self.transition(request, Event.BEGIN_SETTLEMENT, payload=payload.to_json())

    async def verify(
        self, request: PaymentRequest, payload: AnyPaymentPayload, requirements: PaymentRequirements
    ) -> None:
        try:
            verdict = await self.settlement.verify(payload, requirements)
        except BaseException:
            # Verification moves no money, so the request is safely payable again.
            with anyio.CancelScope(shield=True):
                await self.transition(request, Event.SETTLEMENT_FAILED)
            raise
        if not verdict.is_valid:
            await self.transition(request, Event.SETTLEMENT_FAILED)
            refreshed = await self.ledger.get(request.id)
            raise Refused(payment_error_for(verdict.invalid_reason, verdict.invalid_message), refreshed)

    async def settle(
        self, request: PaymentRequest, payload: AnyPaymentPayload, requirements: PaymentRequirements
    ) -> PaymentRequest:
        # A SettlementError here leaves the request in `settling` with its payload:
        # the transaction may have been broadcast, so only the chain can tell.
        receipt = await self.settlement.settle(payload, requirements)
        if not receipt.success:
            await self.transition(request, Event.SETTLEMENT_FAILED)
            refreshed = await self.ledger.get(request.id)
            raise Refused(payment_error_for(receipt.error_reason, receipt.error_message), refreshed)
        record = SettlementRecord(
            tx_hash=receipt.transaction,
            payer=receipt.payer or payload.payload.authorization.from_,
            amount=request.price,
            asset=request.asset,
            network=request.network,
            settled_at=self.clock(),
        )
        logger.info("settled %s for %r in %s", format_usd(request.price), request.tool, receipt.transaction)
        return await self.transition(request, Event.SETTLED, settlement=record)

    async def transition(self, request: PaymentRequest, event: Event, **changes: Any) -> PaymentRequest:
        try:
            return await self.ledger.transition(request.id, event, now=self.clock(), **changes)
        except StateConflict as conflict:
            raise Refused(conflict_error(conflict), None) from None


def check_payable(request: PaymentRequest, price: int, now: float, decimals: int) -> None:
    """Raise the `PaymentError` that says why `request` cannot take a payment now, if any."""
    if request.state is State.CONSUMED:
        raise PaymentReplayed(f"payment request {request.id} was already paid and used")
    if request.state in (State.PAID, State.REDEEMING):
        raise PaymentReplayed(
            f"payment request {request.id} is already paid; call the tool again without a payment to use it"
        )
    if request.state is State.SETTLING:
        raise PaymentInProgress(f"payment request {request.id} is being settled by another call")
    if request.state is State.EXPIRED or request.is_expired(now):
        raise PaymentExpired(f"payment request {request.id} has expired; pay the new one")
    if request.price < price:
        raise underpaid(request, price, decimals)


def underpaid(request: PaymentRequest, price: int, decimals: int) -> PaymentMismatch:
    return PaymentMismatch(
        f"payment request {request.id} covers {format_usd(request.price, decimals)}, "
        f"but this call costs {format_usd(price, decimals)}",
        reason="invalid_exact_evm_payload_authorization_value_mismatch",
    )


def conflict_error(conflict: StateConflict) -> PaymentError:
    """The payer-facing error for a request that moved under us."""
    current = conflict.current
    if current in (State.SETTLING, State.REDEEMING):
        return PaymentInProgress(
            f"payment request {conflict.request_id} is in use by another call; try again"
        )
    if current == State.CONSUMED:
        return PaymentReplayed(f"payment request {conflict.request_id} was already used")
    if current == State.EXPIRED:
        return PaymentExpired(f"payment request {conflict.request_id} has expired")
    if current in (State.PAID,):
        return PaymentReplayed(f"payment request {conflict.request_id} is already paid")
    return UnknownPaymentRequest(
        f"payment request {conflict.request_id} is not payable ({current or 'missing'})"
    )

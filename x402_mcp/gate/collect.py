"""Collecting a payment for a payment request: check, verify, settle, record.

The gate (an agent's `_meta["x402/payment"]`) and the payment page (a browser
wallet, or an x402 HTTP client on the hosted URL) collect money the same way,
so both go through these functions: the ledger moves the request
`issued → settling → paid` (or back to `issued` when the backend refuses), and
every refusal is a `Refused` naming what was wrong.

A request can be paid on the server's EVM network or, when `Solana` payees are
configured, on Solana; the payment's own network picks the requirements it is
checked against and the backend that settles it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import anyio

from ..core.challenge import requirements_for
from ..core.claims import payment_key
from ..core.lifecycle import Event, State
from ..core.money import format_usd
from ..core.networks import Asset, Network
from ..core.text import shown
from ..core.wire import (
    PaymentRequirements,
    ReceivedPayment,
    SettleResponse,
    SvmPaymentPayload,
    VerifyResponse,
)
from ..errors import (
    LedgerError,
    PaymentError,
    PaymentExpired,
    PaymentInProgress,
    PaymentMismatch,
    PaymentReplayed,
    Refused,
    SettlementError,
    StateConflict,
    UnknownPaymentRequest,
    payment_error_for,
)
from ..ledger.base import Ledger, Owner, PaymentRequest, SettlementRecord
from ..schemes.exact.matching import match_payment, match_solana_payment
from ..schemes.exact.solana import Solana, solana_payee_on
from ..settlement.base import OnChain, Settlement, backend_failures
from ..settlement.outcome import authorization_on_chain, may_release
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
        owner: Owner | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.ledger = ledger
        self.owner = owner
        self.telemetry = telemetry or Telemetry()
        self.settlement = settlement
        self.network = network
        self.asset = asset
        self.clock = clock
        self.solana = tuple(solana)
        # Requests whose verification found their authorization already paid on chain (someone
        # submitted it first), by id, with that transaction: `settle` records it, sending nothing.
        self._paid_on_chain: dict[str, str] = {}

    async def get(self, request_id: str) -> PaymentRequest | None:
        """Request `request_id` if this server quoted it; None for an unknown id and for
        another server's request (the two must look the same to a caller)."""
        return await self.ledger.get(request_id, owner=self.owner)

    def check_owned(self, request: PaymentRequest) -> None:
        """Refuse `request` as unknown unless this server quoted it (for a request read
        without `get`, e.g. by the page or an older caller).

        Raises:
            Refused: `UnknownPaymentRequest`, saying nothing of the other server's request.
        """
        if self.owner is not None and not self.owner.owns(request):
            raise Refused(unknown_request(request.id), None)

    async def accepts(self, request: PaymentRequest) -> list[PaymentRequirements]:
        """Every way to pay `request`: the EVM network first, then each Solana payee
        whose facilitator can currently name its fee payer."""
        accepts = [requirements_for(request, self.asset)]
        for option in self.solana:
            quoted = await option.quote(request)
            if quoted is not None:
                accepts.append(quoted)
        return accepts

    async def requirements(self, request: PaymentRequest, payload: ReceivedPayment) -> PaymentRequirements:
        """Our requirements for `request` on the network `payload` pays on.

        Raises:
            Refused: we accept no payments on that network.
            SettlementError: the Solana facilitator cannot name its fee payer (a crash).
        """
        if not isinstance(payload, SvmPaymentPayload):
            return requirements_for(request, self.asset)
        option = self._solana_option(payload, request)
        quoted = await option.quote(request)
        if quoted is None:
            raise SettlementError(f"the facilitator for {option.network.caip2} cannot name its fee payer")
        return quoted

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
        request = await self.begin(request, payload, requirements, price=request.price, decimals=decimals)
        await self.verify(request, payload, requirements)
        return await self.settle(request, payload, requirements)

    async def begin(
        self,
        request: PaymentRequest,
        payload: ReceivedPayment,
        requirements: PaymentRequirements,
        *,
        price: int,
        decimals: int,
    ) -> PaymentRequest:
        """Check the payment against the request, claim the payment for it, and claim the
        request for settling.

        The payment is claimed after its signature is known to be its payer's, so
        nobody can take someone else's nonce with a forged one: an EOA's signature
        is recovered by the pure checks; a smart wallet's (EIP-1271 / ERC-6492) is
        verified by the backend first, before the claim. Either way the claim comes
        before anything settles or runs, in either settlement order.

        Raises:
            Refused: the payment does not fit, or was already presented for another
                request (`PaymentReplayed`; which one is not said: a paid id is a
                bearer capability).
        """
        self.check_owned(request)
        now = self.clock()
        try:
            check_payable(request, price, now, decimals)
            if isinstance(payload, SvmPaymentPayload):
                match_solana_payment(payload, requirements)
            else:
                matched = match_payment(payload, requirements, self.network, now=now)
        except PaymentError as error:
            raise Refused(error, request) from None
        if not isinstance(payload, SvmPaymentPayload) and not matched.signature_checked:
            # Only the chain can check this signature; a refusal here leaves the request untouched.
            with backend_failures("verify"):
                verdict = await self.settlement.verify(payload, requirements)
            if not verdict.is_valid:
                raise Refused(payment_error_for(verdict.invalid_reason, verdict.invalid_message), request)
        owner = await self.ledger.claim_payment(payment_key(payload, requirements), request.id, now=now)
        if owner != request.id:
            raise Refused(
                PaymentReplayed(
                    "this payment was already presented for another payment request and pays for"
                    " that one only; sign a new payment for this one"
                ),
                request,
            )
        return await self.transition(request, Event.BEGIN_SETTLEMENT, payload=payload.to_json())

    async def verify(
        self, request: PaymentRequest, payload: ReceivedPayment, requirements: PaymentRequirements
    ) -> None:
        """Have the backend verify `payload`; a refusal makes the request payable again,
        unless the token shows its authorization used (see `_release_unless_moved`).

        Returns normally when the authorization already paid this request on chain
        (someone submitted it first): `settle` then records that transfer.

        Raises:
            Refused: the backend refused the payment (the request is `issued` again).
            SettlementError / LedgerError: a crash (the request stays `settling` if the
                authorization may have moved money).
        """
        try:
            with self.telemetry.backend("verify", request, requirements.scheme) as verifying:
                verdict = await self._verify(request, payload, requirements)
                if not verdict.is_valid:
                    verifying.refused(payment_error_for(verdict.invalid_reason, None).reason)
        except BaseException:
            # Our verification moves no money, but someone else may have used the authorization.
            with anyio.CancelScope(shield=True):
                try:
                    await self.release(request, payload, requirements)
                except Exception:
                    logger.warning("%s stays settling: the chain cannot say it moved nothing", request.id)
            raise
        if not verdict.is_valid:
            found = await self._release_unless_moved(request, payload, requirements)
            if found.status == "settled" and found.tx_hash is not None:
                if len(self._paid_on_chain) >= _PAID_ON_CHAIN_LIMIT:
                    self._paid_on_chain.clear()  # only a gas saving: `settle` would find it anyway
                self._paid_on_chain[request.id] = found.tx_hash
                return
            refreshed = await self.get(request.id)
            raise Refused(payment_error_for(verdict.invalid_reason, verdict.invalid_message), refreshed)

    async def settle(
        self,
        request: PaymentRequest,
        payload: ReceivedPayment,
        requirements: PaymentRequirements,
        *,
        claim: tuple[float, str] | None = None,
    ) -> PaymentRequest:
        """Settle `payload` and record it: the request is `paid`, or with `claim`
        (`(lease_seconds, claim_id)`, for a call that goes on to run the tool) `redeeming`
        under that claim from the moment it is recorded, in the same write.

        Raises:
            Refused: the backend refused the settlement (the request is `issued` again).
            SettlementError / LedgerError: a crash (the request stays `settling`).
        """
        # A SettlementError here leaves the request in `settling` with its payload:
        # the transaction may have been broadcast, so only the chain can tell.
        paid_in = self._paid_on_chain.pop(request.id, None)
        try:
            with self.telemetry.backend("settle", request, requirements.scheme) as settling:
                if paid_in is None:
                    receipt = await self._settle(request, payload, requirements)
                else:
                    # Already paid on chain (see `verify`): a transaction of ours could only revert.
                    receipt = SettleResponse(success=True, transaction=paid_in, network=requirements.network)
                if not receipt.success:
                    settling.refused(payment_error_for(receipt.error_reason, None).reason)
        except (SettlementError, LedgerError):
            # Still `settling` (recorded by `begin`): reconciliation asks the chain.
            self.telemetry.settlement_failed(request, "backend_error", requirements.scheme, self.clock())
            raise
        if not receipt.success:
            found = await self._release_unless_moved(request, payload, requirements)
            if found.status != "settled" or found.tx_hash is None:
                refreshed = await self.get(request.id)
                error = payment_error_for(receipt.error_reason, receipt.error_message)
                self.telemetry.settlement_failed(request, error.reason, requirements.scheme, self.clock())
                raise Refused(error, refreshed)
            # The backend said no, but the token shows this authorization paid this request
            # (someone else submitted it first, or the node misreported our transaction).
            logger.warning(
                "%s: settlement refused, but the chain shows it paid in %s", request.id, found.tx_hash
            )
            receipt = receipt.model_copy(
                update={"success": True, "transaction": found.tx_hash, "payer": None}
            )
        claimed_payer = "" if isinstance(payload, SvmPaymentPayload) else payload.payload.authorization.from_
        record = SettlementRecord(
            tx_hash=receipt.transaction,
            payer=receipt.payer or claimed_payer,
            amount=request.price,
            asset=requirements.asset,
            network=requirements.network,
            settled_at=self.clock(),
        )
        logger.info("settled %s for %r in %s", format_usd(request.price), request.tool, receipt.transaction)
        if claim is None:
            settled = await self.transition(request, Event.SETTLED, settlement=record)
        else:
            lease_seconds, claim_id = claim
            settled = await self.transition(
                request,
                Event.SETTLED,
                settlement=record,
                lease_until=record.settled_at + lease_seconds,
                claim_id=claim_id,
            )
        self.telemetry.paid(settled, record, requirements.scheme)  # recorded: now it may be told
        return settled

    async def release(
        self, request: PaymentRequest, payload: ReceivedPayment, requirements: PaymentRequirements
    ) -> None:
        """Make `request` payable again when nothing we did settled it (verification failed,
        or a `settle="after"` tool failed), unless the token shows its authorization used:
        then it stays `settling`, and reconciliation records what the chain shows.

        Raises:
            Refused: the request moved on meanwhile (a state conflict).
        """
        self._paid_on_chain.pop(request.id, None)
        try:
            await self._release_unless_moved(request, payload, requirements)
        except SettlementError as kept:
            logger.warning("%s stays settling for reconciliation: %s", request.id, kept)

    async def _release_unless_moved(
        self, request: PaymentRequest, payload: ReceivedPayment, requirements: PaymentRequirements
    ) -> OnChain:
        """Put a refused payment's request back to `issued`, unless its authorization may
        have moved money; what the chain said either way.

        The token is asked first (`authorization_on_chain`): a request goes back to
        `issued` only when the authorization is unused or canceled (or the backend
        cannot read the chain at all, and its refusal is all we have). `settled`
        is returned for the caller to honour as the payment.

        Raises:
            SettlementError: the node could not be read, or the authorization was used
                by a transaction we cannot match to this request: the request stays
                `settling` for reconciliation, and the payer must not pay again.
        """
        backend: object = self.settlement
        if isinstance(payload, SvmPaymentPayload):
            backend = self._solana_option(payload, request).settlement
        found = await authorization_on_chain(backend, payload, requirements)
        if may_release(found):
            await self.transition(request, Event.SETTLEMENT_FAILED)
        elif found.status != "settled":
            raise SettlementError(
                f"the token shows the authorization for {request.id} used ({found.status}), but no "
                "transaction paying this request was found; it is kept for reconciliation, so do not "
                "pay again"
            )
        return found

    async def _verify(
        self, request: PaymentRequest, payload: ReceivedPayment, requirements: PaymentRequirements
    ) -> VerifyResponse:
        if isinstance(payload, SvmPaymentPayload):
            option = self._solana_option(payload, request)
            with backend_failures("verify"):
                return await option.settlement.verify(payload, requirements)
        with backend_failures("verify"):
            return await self.settlement.verify(payload, requirements)

    async def _settle(
        self, request: PaymentRequest, payload: ReceivedPayment, requirements: PaymentRequirements
    ) -> SettleResponse:
        if isinstance(payload, SvmPaymentPayload):
            option = self._solana_option(payload, request)
            with backend_failures("settle"):
                return await option.settlement.settle(payload, requirements)
        with backend_failures("settle"):
            return await self.settlement.settle(payload, requirements)

    def _solana_option(self, payload: SvmPaymentPayload, request: PaymentRequest) -> Solana:
        network = payload.accepted.network
        option = solana_payee_on(network, self.solana)
        if option is not None:
            return option
        accepted = ", ".join([self.network.caip2, *(option.network.caip2 for option in self.solana)])
        raise Refused(
            PaymentMismatch(
                f"payments on {network} are not accepted here; pay on one of: {accepted}",
                reason="network_mismatch",
            ),
            request,
        )

    async def transition(self, request: PaymentRequest, event: Event, **changes: Any) -> PaymentRequest:
        try:
            with self.telemetry.ledger_step(event.value, request.id):
                return await self.ledger.transition(
                    request.id, event, now=self.clock(), owner=self.owner, **changes
                )
        except StateConflict as conflict:
            raise Refused(conflict_error(conflict), None) from None


def unknown_request(request_id: str) -> UnknownPaymentRequest:
    """What the caller hears of an id this server never quoted (unknown, or another
    server's sharing the ledger): the same words either way."""
    return UnknownPaymentRequest(f"there is no payment request {shown(request_id)}")


_PAID_ON_CHAIN_LIMIT = 1024


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

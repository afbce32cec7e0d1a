"""The `exact` scheme on an EVM network: an EIP-3009 `transferWithAuthorization` of the price.

The payer signs an authorization for exactly the price to our payee; the pure checks
(`matching.match_payment`) refuse a wrong one without a round trip; the settlement
backend (local, a facilitator, CDP, a relayer) verifies what needs the chain and
submits it. A refusal is weighed against the token's own record first
(`outcome.authorization_on_chain`): an authorization the chain shows used for this
payment is the payment, whoever submitted it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...core.networks import Asset, Network
from ...core.wire import AnyPaymentPayload, PaymentRequirements, SettleResponse, parse_evm_payment
from ...errors import PaymentError, Refusal, SettlementError
from ..backends import Settlement, backend_failures
from ..outcome import authorization_on_chain, may_release
from ..protocol import Matched, OnChain, PaidAlready, Quote, Settleable, Settled, Valid, Verdict
from .answers import backend_refusal, check_whole_charge, claim_key, exact_receipt, offered_on
from .matching import match_payment

__all__ = ["ExactEvm", "requirements_for"]


def requirements_for(quote: Quote, asset: Asset) -> PaymentRequirements:
    """The `exact` EVM `accepts` entry for a quoted request, with its EIP-712 domain and id."""
    return PaymentRequirements(
        scheme="exact",
        network=quote.network,
        amount=str(quote.price),
        asset=quote.asset,
        pay_to=quote.pay_to,
        max_timeout_seconds=quote.max_timeout_seconds,
        extra={"name": asset.name, "version": asset.version, "paymentRequestId": quote.id},
    )


class ExactEvm:
    """The `exact` scheme on the server's EVM `network`, in `asset`, through `settlement`."""

    scheme = "exact"

    def __init__(self, network: Network, asset: Asset, settlement: Settlement) -> None:
        self.network = network
        self.asset = asset
        self.settlement = settlement

    @property
    def caip2(self) -> str:
        return self.network.caip2

    def __repr__(self) -> str:
        return f"ExactEvm(network={self.caip2!r}, asset={self.asset.address!r})"

    def parse(self, raw: Mapping[str, Any]) -> AnyPaymentPayload | Refusal:
        try:
            return parse_evm_payment(raw)
        except PaymentError as error:
            return Refusal.of(error)

    async def accepts(self, quote: Quote) -> Sequence[PaymentRequirements]:
        return [requirements_for(quote, self.asset)]

    def match(
        self, payload: AnyPaymentPayload, offered: Sequence[PaymentRequirements], *, now: float
    ) -> Matched[AnyPaymentPayload] | Refusal:
        requirements = offered_on(self.caip2, offered)
        if isinstance(requirements, Refusal):
            return requirements
        try:
            found = match_payment(payload, requirements, self.network, now=now)
        except PaymentError as error:
            return Refusal.of(error)
        return Matched(
            payload,
            requirements,
            found.payer,
            int(requirements.amount),
            claim_key(payload, requirements),
            signature_checked=found.signature_checked,
        )

    async def verify(self, matched: Matched[AnyPaymentPayload]) -> Verdict:
        """The backend's word; when it refuses, the token's: an authorization already used to
        pay these requirements is `PaidAlready` (someone submitted it first).

        Raises:
            SettlementError: the backend failed, or the token shows the authorization used
                by a transaction that does not pay these requirements (keep it for
                reconciliation; the payer must not pay again).
        """
        with backend_failures("verify"):
            answer = await self.settlement.verify(matched.payload, matched.requirements)
        if answer.is_valid:
            return Valid(matched.payer)
        moved = await self._moved(matched)
        if moved is not None:
            return PaidAlready(matched.payer, moved)
        return backend_refusal(answer.invalid_reason, answer.invalid_message)

    async def settle(
        self, matched: Matched[AnyPaymentPayload], verdict: Settleable, *, charge: int
    ) -> Settled | Refusal:
        """Submit the authorization; a refusal the token contradicts (it shows this payment
        made) is the payment.

        Raises:
            SettlementError: as `verify`; the transaction may have been sent.
        """
        check_whole_charge(matched.ceiling, charge)
        with backend_failures("settle"):
            answer = await self.settlement.settle(matched.payload, matched.requirements)
        network = matched.requirements.network
        if answer.success:
            return Settled(answer.transaction, network, answer.payer or matched.payer, charge)
        moved = await self._moved(matched)
        if moved is not None:
            return Settled(moved, network, matched.payer, charge)
        return backend_refusal(answer.error_reason, answer.error_message)

    async def release(self, matched: Matched[AnyPaymentPayload], verdict: Settleable) -> None:
        return None  # verifying reserved nothing

    def receipt(self, settled: Settled) -> SettleResponse:
        return exact_receipt(settled)

    async def reconcile(self, payload: AnyPaymentPayload, requirements: PaymentRequirements) -> OnChain:
        return await authorization_on_chain(self.settlement, payload, requirements)

    async def _moved(self, matched: Matched[AnyPaymentPayload]) -> str | None:
        """The transaction that already paid `matched`, None when the authorization moved nothing.

        Raises:
            SettlementError: the node could not be read, or the authorization was used elsewhere.
        """
        found = await authorization_on_chain(self.settlement, matched.payload, matched.requirements)
        if found.status == "settled" and found.tx_hash is not None:
            return found.tx_hash
        if may_release(found):
            return None
        raise SettlementError(
            f"the token shows the authorization used ({found.status}), but no transaction paying "
            "these requirements was found; it is kept for reconciliation, so do not pay again"
        )

"""The `exact` scheme on Solana: USDC on Solana, settled by an x402 facilitator.

A server keeps its EVM network and adds `Solana(...)` (this scheme with its
facilitator chosen, `settlement.solana`) to `Payments(also_accept=[...])`.
Every challenge then offers a second `exact` requirement on Solana. The payer
signs a transaction (a USDC transfer to our payee, with the facilitator as fee
payer and the payment request id as its memo); the facilitator checks it against
our requirements, completes it and sends it. We never read the transaction:
no Solana code runs here, only x402 over HTTP.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from ...core.money import USDC_DECIMALS
from ...core.networks import SolanaNetwork, is_solana_address, resolve_solana_network
from ...core.wire import PaymentRequirements, SettleResponse, SvmPaymentPayload, parse_payment_payload
from ...errors import ConfigurationError, PaymentError, Refusal, SettlementError
from ..backends import SolanaSettlement, backend_failures
from ..protocol import Matched, OnChain, Quote, Settleable, Settled, Valid, Verdict
from .answers import backend_refusal, check_whole_charge, claim_key, exact_receipt, offered_on
from .matching import match_solana_payment

logger = logging.getLogger("x402_mcp")

__all__ = ["ExactSvm", "solana_payee_on"]

FEE_PAYER_RETRY_SECONDS = 30.0
"""After the facilitator failed to name its fee payer, challenges go out without
Solana for this long rather than waiting on it every time."""


class ExactSvm:
    """A Solana payee, offered beside the server's EVM network: the `exact` scheme on Solana.

    Args:
        pay_to: the payee's Solana wallet address (base58); USDC arrives in its
            associated token account, which must exist.
        network: `"solana-devnet"` (default), `"solana"` (mainnet), or a CAIP-2 id.
        mint: the token, when not the network's USDC. It must have the same
            decimals as the server's EVM asset, since one price covers both.
        decimals: the mint's decimals (USDC: 6).
        settlement: a facilitator that settles exact-SVM payments on `network`
            (`FacilitatorSettlement(url)`; `settlement.solana.Solana` picks the public
            one for devnet when none is given).

    Raises:
        ConfigurationError: an invalid payee, an unknown network, or no mint.
    """

    scheme = "exact"

    def __init__(
        self,
        pay_to: str,
        network: str | SolanaNetwork = "solana-devnet",
        *,
        mint: str | None = None,
        decimals: int = USDC_DECIMALS,
        settlement: SolanaSettlement,
    ) -> None:
        if not is_solana_address(pay_to):
            raise ConfigurationError(f"Solana pay_to {pay_to!r} is not a base58 Solana address")
        self.network = resolve_solana_network(network)
        chosen_mint = mint or self.network.usdc_mint
        if chosen_mint is None:
            raise ConfigurationError(f"no USDC mint is known for {self.network.caip2}; pass mint=...")
        if not is_solana_address(chosen_mint):
            raise ConfigurationError(f"Solana mint {chosen_mint!r} is not a base58 Solana address")
        self.pay_to = pay_to
        self.mint = chosen_mint
        self.decimals = decimals
        self.settlement = settlement
        self._fee_payer: str | None = None
        self._retry_at = 0.0

    @property
    def caip2(self) -> str:
        return self.network.caip2

    def __repr__(self) -> str:
        kind = type(self).__name__
        return f"{kind}(pay_to={self.pay_to!r}, network={self.network.caip2!r}, mint={self.mint!r})"

    async def fee_payer(self) -> str | None:
        """The facilitator's fee payer on our network (read once), or None while it cannot say."""
        if self._fee_payer is None and time.monotonic() >= self._retry_at:
            try:
                with backend_failures("name its Solana fee payer"):
                    self._fee_payer = await self.settlement.fee_payer(self.network.caip2)
            except SettlementError:
                self._retry_at = time.monotonic() + FEE_PAYER_RETRY_SECONDS
                logger.warning(
                    "Solana is left out of payment challenges for %.0f s: its facilitator could not "
                    "name a fee payer",
                    FEE_PAYER_RETRY_SECONDS,
                    exc_info=True,
                )
        return self._fee_payer

    async def quote(self, request: Quote) -> PaymentRequirements | None:
        """The requirements for `request` on Solana, or None while the facilitator cannot name
        its fee payer (see `fee_payer`)."""
        fee_payer = await self.fee_payer()
        return None if fee_payer is None else self.requirements(request, fee_payer)

    def requirements(self, request: Quote, fee_payer: str) -> PaymentRequirements:
        """The `accepts` entry for `request` on Solana.

        The memo binds the transaction to this payment request: the facilitator
        refuses a transaction whose memo differs, so a payment for one request
        can never be presented for another.
        """
        return PaymentRequirements(
            scheme="exact",
            network=self.network.caip2,
            amount=str(request.price),
            asset=self.mint,
            pay_to=self.pay_to,
            max_timeout_seconds=request.max_timeout_seconds,
            extra={"feePayer": fee_payer, "memo": request.id, "paymentRequestId": request.id},
        )

    # The scheme protocol (`schemes.protocol.Scheme`).

    def parse(self, raw: Mapping[str, Any]) -> SvmPaymentPayload | Refusal:
        try:
            payload = parse_payment_payload(raw)
        except PaymentError as error:
            return Refusal.of(error)
        if not isinstance(payload, SvmPaymentPayload):
            return Refusal("invalid_payload", f"The payment is not a Solana payment on {self.caip2}.")
        return payload

    async def accepts(self, quote: Quote) -> Sequence[PaymentRequirements]:
        offered = await self.quote(quote)
        return [] if offered is None else [offered]

    def match(
        self, payload: SvmPaymentPayload, offered: Sequence[PaymentRequirements], *, now: float
    ) -> Matched[SvmPaymentPayload] | Refusal:
        """Our Solana entry the payment accepted, if its echo names exactly our terms.

        The payer is not known until the facilitator has read the transaction, so
        nothing can be recorded in anyone's name before; `signature_checked` is True
        in the sense that there is no name to protect.
        """
        requirements = offered_on(self.caip2, offered)
        if isinstance(requirements, Refusal):
            return requirements
        try:
            match_solana_payment(payload, requirements)
        except PaymentError as error:
            return Refusal.of(error)
        return Matched(payload, requirements, "", int(requirements.amount), claim_key(payload, requirements))

    async def verify(self, matched: Matched[SvmPaymentPayload]) -> Verdict:
        with backend_failures("verify"):
            answer = await self.settlement.verify(matched.payload, matched.requirements)
        if not answer.is_valid:
            return backend_refusal(answer.invalid_reason, answer.invalid_message)
        return Valid(answer.payer or "")

    async def settle(
        self, matched: Matched[SvmPaymentPayload], verdict: Settleable, *, charge: int
    ) -> Settled | Refusal:
        check_whole_charge(matched.ceiling, charge)
        with backend_failures("settle"):
            answer = await self.settlement.settle(matched.payload, matched.requirements)
        if not answer.success:
            return backend_refusal(answer.error_reason, answer.error_message)
        return Settled(answer.transaction, matched.requirements.network, answer.payer or "", charge)

    async def release(self, matched: Matched[SvmPaymentPayload], verdict: Settleable) -> None:
        return None  # verifying reserved nothing

    def receipt(self, settled: Settled) -> SettleResponse:
        return exact_receipt(settled)

    async def reconcile(self, payload: SvmPaymentPayload, requirements: PaymentRequirements) -> OnChain:
        """Always `unknown`: we do not read Solana, and a facilitator has no lookup; settling
        the same transaction again is how reconciliation learns whether it landed."""
        return OnChain("unknown")


PayeeT = TypeVar("PayeeT", bound=ExactSvm)


def solana_payee_on(network: str, payees: Sequence[PayeeT]) -> PayeeT | None:
    """The payee of `payees` on the Solana `network` (a CAIP-2 id), if any."""
    return next((payee for payee in payees if payee.network.caip2 == network), None)

"""Pricing a call, quoting it, challenging and refusing: the gate's answers that run no tool.

A call is priced from its validated arguments; an unpaid call gets a stored
payment request and its challenge (with the link offered by elicitation where
the client can take it); a refused payment gets one bounded audit line and
either its request's challenge again or a tool error that says what was wrong.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import anyio
from mcp_types import CallToolResult
from pydantic import ValidationError

from ..core.challenge import Offer, challenge_result, failure_result, payment_required, refusal_result
from ..core.flow import payable_now, uncovered
from ..core.ids import new_request_id
from ..core.inbound import argument_problems
from ..core.money import format_usd
from ..core.networks import Asset, Network
from ..core.text import shown
from ..errors import InvalidPrice, LedgerError, PaymentError, Refused, SettlementError
from ..ledger.base import Ledger, PaymentRequest
from ..page.serving import PageLink
from ..telemetry import Telemetry
from .answers import GET_A_PRICE, REFUSAL_TEXT_LIMIT
from .call import ToolCall
from .collect import Collector
from .sweeper import Sweeper

logger = logging.getLogger("x402_mcp")

# How long an unpaid call waits for a client to answer the URL elicitation of the link.
# The answer changes nothing (the challenge follows either way), and clients give up on a
# call after about 60 s (the TypeScript SDK's default), so the wait stays short.
ELICITATION_WAIT_SECONDS = 5.0


class GateParts(Protocol):
    """What the driver needs of the gate it drives (`Gate` is one)."""

    network: Network
    asset: Asset
    pay_to: str
    max_timeout_seconds: int
    ledger: Ledger
    collector: Collector
    sweeper: Sweeper
    telemetry: Telemetry
    link: PageLink

    def clock(self) -> float: ...

    @property
    def offer(self) -> Offer: ...


class Quoting:
    """Prices, quotes, challenges and refusals for the calls of one gate."""

    def __init__(self, gate: GateParts) -> None:
        self.gate = gate

    def price(self, call: ToolCall, arguments: dict[str, Any]) -> int | CallToolResult:
        """This call's price in atomic units, or the tool error that says why it has none.

        The arguments are checked against the tool's input schema first, so nothing
        is quoted for a call that could not run: a caller who sent bad arguments is
        told which (they can fix it); a price function that fails on valid arguments
        is the operator's bug, logged with its cause.
        """
        try:
            validated = call.validate(arguments)
        except ValidationError as invalid:
            logger.info("refused to price %r: its arguments do not fit its input schema", call.tool)
            return failure_result(
                f"The arguments of {call.tool} are invalid, so it was not priced and did not run "
                f"(nothing was charged): {argument_problems(invalid)}."
            )
        except Exception:  # a custom validator or default factory that crashes is the tool's bug
            logger.exception("the argument model of paid tool %r failed", call.tool)
            return failure_result(
                f"The arguments of {call.tool} could not be checked, so it did not run; nothing was charged."
            )
        try:
            return call.spec.atomic_price(validated, self.gate.asset.decimals)
        except InvalidPrice as broken:
            logger.error("could not price a call of paid tool %r: %s", call.tool, broken, exc_info=broken)
            return failure_result(
                f"This tool's price could not be computed ({broken}), so it did not run and nothing "
                "was charged. The server's operator can find the cause in its log."
            )

    def quote(self, call: ToolCall, price: int) -> PaymentRequest:
        """A new payment request for this call (not stored yet)."""
        gate, now = self.gate, self.gate.clock()
        return PaymentRequest(
            id=new_request_id(),
            tool=call.tool,
            price=price,
            asset=gate.asset.address,
            network=gate.network.caip2,
            pay_to=gate.pay_to,
            caller=call.caller,
            created_at=now,
            expires_at=now + gate.max_timeout_seconds,
            max_timeout_seconds=gate.max_timeout_seconds,
            description=call.spec.description or call.tool,
        )

    async def store(self, request: PaymentRequest) -> PaymentRequest:
        # Counted against the caller's cap and stored in one ledger transaction.
        with self.gate.telemetry.ledger_step("issue", request.id):
            await self.gate.sweeper.issue(request)
        self.gate.telemetry.quoted(request)
        return request

    async def link_page(self, http_request: Any) -> None:
        try:
            await self.gate.link.ensure(http_request)
        except (OSError, TimeoutError):
            # The challenge still works without a page (agents pay in _meta); say why in the log.
            logger.exception(
                "could not start the payment page; links point to %s", self.gate.offer.public_url
            )

    async def offer_link(self, call: ToolCall, request: PaymentRequest) -> None:
        """Offer the hosted URL by URL-mode elicitation where the door and the client support it.

        Progressive enhancement only: the tool error that follows stays the baseline,
        and arrives after at most `ELICITATION_WAIT_SECONDS` however late the client answers.
        """
        if call.offer_link is None:
            return
        price = format_usd(request.price, self.gate.asset.decimals)
        with anyio.move_on_after(ELICITATION_WAIT_SECONDS):
            try:
                await call.offer_link(
                    f"Pay {price} for {request.description or request.tool}",
                    self.gate.offer.hosted_url(request.id),
                    request.id,
                )
            except Exception:  # any failure of the optional offer leaves the baseline intact
                logger.info("the client did not take the payment link by elicitation", exc_info=True)

    async def challenge(
        self, request: PaymentRequest, error: str | None = None, corrected: Refused | None = None
    ) -> CallToolResult:
        """The request's challenge; after a scheme's corrective answer (`corrected`), its
        corrected requirements stand in place of its own, and its reason code is the `error`."""
        gate = self.gate
        accepts = await gate.collector.accepts(request)
        code = None
        if corrected is not None and corrected.corrections:
            by_kind = {(entry.scheme, entry.network): entry for entry in corrected.corrections}
            accepts = [by_kind.get((entry.scheme, entry.network), entry) for entry in accepts]
            code = corrected.error.reason
        result = challenge_result(
            request, gate.offer, now=gate.clock(), error=error, accepts=accepts, code=code
        )
        gate.telemetry.challenged(request)  # a challenge answered again is one too (not an error)
        return result

    async def withheld(self, tool: str, request: PaymentRequest, refused: Refused) -> CallToolResult:
        """The answer when settlement was refused after the tool ran: output withheld, pay again."""
        logger.warning("settlement failed after %r ran; its output is withheld", tool)
        reason = shown(str(refused.error), REFUSAL_TEXT_LIMIT)
        message = f"Settlement failed, so the result is withheld: {reason}"
        accepts = await self.gate.collector.accepts(request)
        return refusal_result(message, payment_required(request, error=message, accepts=accepts))

    async def refuse(
        self,
        tool: str,
        price: int,
        error: PaymentError,
        request: PaymentRequest | None,
        corrected: Refused | None = None,
    ) -> CallToolResult:
        """Answer a refused payment or request id, changing nothing but one bounded audit line.

        When the refusal concerns a request this call can still pay, its challenge is
        answered again; otherwise a tool error says what was wrong and how to get a
        price. Either way nothing is quoted: a stream of bad payments must neither grow
        the ledger nor fill the caller's quota of open requests.
        """
        gate, now = self.gate, self.gate.clock()
        message = shown(str(error), REFUSAL_TEXT_LIMIT)
        reason = shown(error.reason, 60)
        try:
            await gate.ledger.audit(
                request.id if request else None, "refused", f"{tool}: {reason}: {message}", now=now
            )
        except LedgerError:
            logger.exception("could not write the audit line of a refused payment for %r", tool)
        logger.info("refused a payment for %r: %s (%s)", tool, message, reason)
        gate.telemetry.refused(tool, reason, request, now)
        decimals = gate.asset.decimals
        if request is not None and not (
            uncovered(request, tool=tool, price=price, decimals=decimals)
            or payable_now(request, price=price, now=now, decimals=decimals)
        ):
            # The same request can still be paid: point at it again, changing nothing.
            try:
                return await self.challenge(request, message, corrected)
            except (SettlementError, LedgerError):
                logger.exception("could not restate the challenge of %s", request.id)
        return refusal_result(f"The payment was not accepted: {message}\n{GET_A_PRICE.format(tool=tool)}")

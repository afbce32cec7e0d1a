"""The driver of a paid call: reads the facts, asks the flow, carries out what it says.

Every decision is `x402_mcp.core.flow`'s: which route a call takes (`route`),
what its stored request allows (`judge_payment`, `judge_redemption`), and how a
payment is settled around the run (`PaidRun`, carried out by `paid_run`). What
is left here is I/O: reading the request, claiming it, storing a quote, and
turning a refusal or a crash into the tool error the caller reads.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

import anyio
from mcp_types import CallToolResult

from ..core.challenge import (
    META_PAYMENT,
    META_REQUEST_ID,
    REQUEST_ID_ARGUMENT,
    failure_result,
    refusal_result,
)
from ..core.flow import Judgement, Order, Route, judge_payment, judge_redemption, order_for, route
from ..core.inbound import explicit_request_id, named_request_id, payment_from
from ..core.pricing import SettleOrder
from ..core.states import Claim, Event, PaymentRequest
from ..core.wire import PaymentPayloadV1, ReceivedPayment, parse_payment_payload
from ..errors import LedgerError, PaymentError, Refused, SettlementError, TooManyOpenRequests
from .answers import RAN_BUT_UNCONFIRMED, crash_result, failed_part
from .call import ToolCall
from .guard import gate_passed
from .paid_run import Execution, Payment, execute
from .quoting import GateParts, Quoting
from .redemption import Redemption

logger = logging.getLogger("x402_mcp")


class Driver:
    """Answers the calls of one gate's paid tools (see the module docstring)."""

    def __init__(self, gate: GateParts, redemption: Redemption) -> None:
        self.gate = gate
        self.redemption = redemption
        self.quoting = Quoting(gate)

    async def handle(self, source: ToolCall, *, opening: Callable[[], Awaitable[None]]) -> CallToolResult:
        """Answer one call of a paid tool, once `opening` opened the ledger (on first use)."""
        call = _Call(source)
        # Ours, not the tool's: its function never sees it (it is not in its signature).
        id_argument = source.arguments.pop(REQUEST_ID_ARGUMENT, None)
        price = self.quoting.price(source, source.arguments)
        if isinstance(price, CallToolResult):
            return price
        try:
            await opening()
        except LedgerError:
            logger.exception("the payment ledger could not be opened")
            return failure_result(
                "The payment ledger is unavailable, so this paid tool cannot run right now."
            )
        try:
            return await self._answer(call, price, id_argument)
        except TooManyOpenRequests as capped:
            logger.info("refused to quote %r: %s", call.tool, capped)
            self.gate.telemetry.refused(call.tool, capped.reason, None, self.gate.clock())
            return refusal_result(str(capped))
        except Refused as refused:
            return await self.quoting.refuse(call.tool, price, refused.error, refused.request, refused)
        except PaymentError as error:
            return await self.quoting.refuse(call.tool, price, error, None)
        except (SettlementError, LedgerError) as crash:
            logger.error("paid call of %r failed in the %s", call.tool, failed_part(crash), exc_info=crash)
            return crash_result(crash, ran=call.ran, tool=call.tool, request_id=call.request_id)

    async def _answer(self, call: _Call, price: int, id_argument: object) -> CallToolResult:
        meta = call.source.meta
        explicit_id = explicit_request_id(id_argument, meta.get(META_REQUEST_ID))
        payload = payment_from(meta[META_PAYMENT]) if META_PAYMENT in meta else None
        named = (
            None if payload is None or isinstance(payload, PaymentPayloadV1) else named_request_id(payload)
        )
        routed = route(
            paying=payload is not None, names_request=named, explicit_id=explicit_id, caller=call.caller
        )
        if isinstance(routed, PaymentError):
            raise routed
        if routed is Route.PAY_FRESH_QUOTE:
            assert isinstance(payload, PaymentPayloadV1)
            return await self._pay_fresh_quote(call, price, payload)
        if routed is Route.PAY_NAMED:
            assert payload is not None and named is not None
            return await self._pay_named(call, price, named, payload)
        if routed is Route.REDEEM_BY_ID:
            assert explicit_id is not None
            return await self._redeem_by_id(call, price, explicit_id)
        if routed is Route.REDEEM_OWN:
            assert call.caller is not None
            # One write, no read before: a paid request that does not cover this (dearer)
            # call claims nothing and leaves it to be quoted.
            claim = await self.redemption.take_redeemable(tool=call.tool, caller=call.caller, price=price)
            if claim is not None:
                return await self._redeem(call, claim)
        await self.quoting.link_page(call.source.http_request)
        request = await self._store(call, self.quoting.quote(call.source, price))
        await self.quoting.offer_link(call.source, request)
        return await self.quoting.challenge(request)

    async def _stored(self, call: _Call, request_id: str) -> PaymentRequest | None:
        """Request `request_id` as stored, if this server quoted it (the call now concerns it)."""
        request = await self.gate.collector.get(request_id)
        if request is not None:
            call.request_id = request.id
        return request

    async def _store(self, call: _Call, request: PaymentRequest) -> PaymentRequest:
        stored = await self.quoting.store(request)
        call.request_id = stored.id
        return stored

    # -- paying with _meta["x402/payment"] ----------------------------------------------------

    async def _pay_named(
        self, call: _Call, price: int, request_id: str, payload: ReceivedPayment
    ) -> CallToolResult:
        request = await self._stored(call, request_id)
        judged = judge_payment(
            request,
            request_id,
            tool=call.tool,
            price=price,
            decimals=self.gate.asset.decimals,
            same_payment=request is not None and _same_payment(request.payload, payload),
        )
        if isinstance(judged, PaymentError):
            raise judged
        assert request is not None
        if judged is Judgement.RUN_PAID:
            # The tool failed after this very payment settled: it may run again.
            return await self._run_paid(call, price, request)
        return await self._settle_and_run(call, price, request, payload)

    async def _pay_fresh_quote(self, call: _Call, price: int, payload: PaymentPayloadV1) -> CallToolResult:
        """An x402 v1 payment names no request: it pays a fresh quote of this call, at its price.

        The quote is stored only once the payment fits it (payee, amount, validity
        window, signature), and withdrawn when the payment is refused after all, so
        a refused payment leaves no open quote behind.
        """
        gate = self.gate
        quote = self.quoting.quote(call.source, price)
        try:
            gate.collector.match(quote, payload, await gate.collector.requirements(quote, payload))
        except Refused as refused:
            raise Refused(refused.error, None) from None  # nothing stored: no request to point at
        await self._store(call, quote)
        try:
            return await self._settle_and_run(call, price, quote, payload)
        except (Refused, PaymentError) as refused:
            error = refused.error if isinstance(refused, Refused) else refused
            with anyio.CancelScope(shield=True):
                # A quote no longer issued has moved on (settling, paid): it is not a bare quote any more.
                with contextlib.suppress(Refused):
                    await gate.collector.transition(quote, Event.EXPIRE)
            raise Refused(error, None) from None

    async def _settle_and_run(
        self, call: _Call, price: int, request: PaymentRequest, payload: ReceivedPayment
    ) -> CallToolResult:
        collector = self.gate.collector
        requirements = await collector.requirements(request, payload)
        # Checked, claimed for this payment and `settling`; tool and price were judged before.
        request, matched = await collector.begin(
            request, payload, requirements, price=price, decimals=self.gate.asset.decimals
        )
        spec = call.spec
        order = order_for(settle_after=spec.settle is SettleOrder.AFTER, overlap=spec.overlap)
        execution = self._execution(call, request)
        execution.payment = Payment(matched)
        return await execute(order, execution)

    # -- redeeming a paid request -------------------------------------------------------------

    async def _redeem_by_id(self, call: _Call, price: int, request_id: str) -> CallToolResult:
        # The usual case, a paid request for this tool, in one write; anything else the slow way.
        claim = await self.redemption.take(request_id, tool=call.tool, price=price)
        if claim is not None:
            return await self._redeem(call, claim)
        request = await self._stored(call, request_id)
        decimals, now = self.gate.asset.decimals, self.gate.clock()
        judged = judge_redemption(
            request, request_id, tool=call.tool, price=price, decimals=decimals, now=now
        )
        if isinstance(judged, PaymentError):
            raise judged
        assert request is not None
        if judged is Judgement.CHALLENGE:
            return await self.quoting.challenge(request, "this payment request is not paid yet")
        return await self._run_paid(call, price, request, claimable=False)

    async def _run_paid(
        self, call: _Call, price: int, request: PaymentRequest, *, claimable: bool = True
    ) -> CallToolResult:
        """Run the tool once for paid `request`: claimed in one write when it can be
        (`claimable`: not known to be unclaimable already); otherwise by the `claim`
        transition, whose refusal says why."""
        call.request_id = request.id
        if claimable:
            claim = await self.redemption.take(request.id, tool=call.tool, price=price)
            if claim is not None:
                return await self._redeem(call, claim)
        return await self._redeem(call, Claim(await self.redemption.claim(request), None))

    async def _redeem(self, call: _Call, claim: Claim) -> CallToolResult:
        call.request_id = claim.request.id
        execution = self._execution(call, claim.request)
        execution.network = claim.network
        return await execute(Order.REDEEM, execution)

    def _execution(self, call: _Call, request: PaymentRequest) -> Execution:
        quoting = self.quoting

        async def withheld(held: PaymentRequest, refused: Refused) -> CallToolResult:
            return await quoting.withheld(call.tool, held, refused)

        def unconfirmed(held: PaymentRequest, crash: SettlementError | LedgerError) -> CallToolResult:
            """The tool ran, but a backend failed while settling: the output waits for the chain
            (the request stays `settling` with the signed payload; reconciliation asks it)."""
            part = failed_part(crash)
            logger.error(
                "settling %s failed in the %s after %r ran; its output is withheld",
                held.id,
                part,
                call.tool,
                exc_info=crash,
            )
            return failure_result(RAN_BUT_UNCONFIRMED.format(part=part, request_id=held.id, tool=call.tool))

        return Execution(
            collector=self.gate.collector,
            redemption=self.redemption,
            tool_name=call.tool,
            tool=call.invoke,
            tool_error=call.source.tool_error,
            request=request,
            withheld=withheld,
            unconfirmed=unconfirmed,
        )


class _Call:
    """The driver's working state for one `ToolCall` of a paid tool."""

    __slots__ = ("caller", "ran", "request_id", "source", "spec", "tool")

    def __init__(self, source: ToolCall) -> None:
        self.source = source
        self.tool = source.tool
        self.spec = source.spec
        self.caller = source.caller
        self.request_id: str | None = None
        self.ran = False
        """Whether the tool body was started: a crash after that must not say it did not run."""

    async def invoke(self) -> CallToolResult:
        self.ran = True
        # The one place a paid tool's body runs: its @paid guard lets it run only in here.
        with gate_passed(self.spec):
            return await self.source.run()


def _same_payment(stored_payload: str | None, payload: ReceivedPayment) -> bool:
    """Whether `payload` is the very payment stored with a request (same signed authorization
    or transaction), as opposed to a new one."""
    if stored_payload is None:
        return False
    try:
        stored = parse_payment_payload(stored_payload)
    except PaymentError:
        return False
    return type(stored) is type(payload) and stored.payload == payload.payload

"""Carrying out a `PaidRun`: the flow decides, this executes against the ledger, backend and tool.

`execute` asks the run (`x402_mcp.core.flow.PaidRun`) for its commands and carries
each out: a `Step` (verify, settle, run, run while settling, consume) is reported
back with its `Outcome`; a `Command` (release, refund) is done; an `Answer` ends
the call. Nothing here chooses what happens next. Failures that are outcomes
(a refusal, a backend crash, the tool failing, raising or being cancelled) are
kept and reported; the answer that follows raises or words them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
from mcp_types import CallToolResult

from ..core.challenge import refund_result
from ..core.flow import Answer, Command, Order, Outcome, PaidRun, Step
from ..core.states import Event
from ..core.wire import SettleResponse
from ..errors import LedgerError, Refusal, Refused, SettlementError, payment_error_for
from ..ledger.base import PaymentRequest
from ..schemes.protocol import Correction, Escrowed, Matched, RefundRequested, Verdict
from .answers import FAILED_BUT_PAID, FAILED_UNCONFIRMED, failed_part, raised, with_note
from .collect import Collector
from .redemption import Hold, Redemption

logger = logging.getLogger("x402_mcp")

Crash = SettlementError | LedgerError
Tool = Callable[[], Awaitable[CallToolResult]]
T = TypeVar("T")


@dataclass(slots=True)
class Payment:
    """The payment a run settles, as its scheme matched it, and what its verification said."""

    matched: Matched[Any]
    verdict: Verdict | None = None


def outcome_of(verdict: Verdict) -> Outcome:
    """What a scheme's verdict means to the flow (a refusal is raised, not returned)."""
    if isinstance(verdict, Escrowed):
        return Outcome.DEFERRED  # held: run, then commit the charge
    if isinstance(verdict, RefundRequested):
        return Outcome.DO_NOT_RUN
    if isinstance(verdict, Correction):
        return Outcome.CORRECTIVE
    return Outcome.OK  # valid, or paid already: settling records it


@dataclass(slots=True)
class Execution:
    """One paid run's I/O: what it holds, and what each step came to."""

    collector: Collector
    redemption: Redemption
    tool_name: str
    tool: Tool
    tool_error: tuple[type[BaseException], ...]
    request: PaymentRequest
    """The request as this run holds it: settling, then claimed (redeeming) once settled."""
    payment: Payment | None = None
    network: str | None = None
    """Where the payment settled, for the receipt (None: looked up when consuming)."""
    result: object = None
    failure: BaseException | None = None
    refusal: Refused | None = None
    crash: Crash | None = None
    hold: Hold | None = None
    refunded: SettleResponse | None = None
    """The receipt of a refund this run carried out instead of running the tool."""
    withheld: Callable[[PaymentRequest, Refused], Awaitable[CallToolResult]] | None = None
    unconfirmed: Callable[[PaymentRequest, Crash], CallToolResult] | None = None
    _odd: list[BaseException] = field(default_factory=list)

    # -- steps ----------------------------------------------------------------------------

    async def _attempt(self, step: Awaitable[T]) -> T | Outcome:
        """`step`'s answer, or the outcome its refusal or backend crash comes to (kept)."""
        try:
            return await step
        except Refused as refused:
            self.refusal = refused
            return Outcome.REFUSED
        except (SettlementError, LedgerError) as crash:
            self.crash = crash
            return Outcome.CRASHED

    async def verify(self) -> Outcome:
        payment = self.payment
        assert payment is not None
        verdict = await self._attempt(self.collector.verify(self.request, payment.matched))
        if isinstance(verdict, Outcome):
            return verdict
        payment.verdict = verdict
        if isinstance(verdict, Correction):
            # Answered as a refusal with the request's challenge again (it is payable once more);
            # the correction's own requirements join that challenge when a scheme answers one.
            error = payment_error_for(verdict.refusal.reason, verdict.refusal.message)
            request = await self.collector.get(self.request.id)
            self.refusal = Refused(error, request, verdict.requirements)
        return outcome_of(verdict)

    async def settle(self) -> Outcome:
        payment = self.payment
        assert payment is not None
        # Recorded already claimed for this run: one write, and no other call can redeem it first.
        claim = self.redemption.settling_claim()
        claimed = await self._attempt(
            self.collector.settle(self.request, payment.matched, verdict=payment.verdict, claim=claim)
        )
        if isinstance(claimed, Outcome):
            return claimed
        self.request = claimed
        self.network = payment.matched.requirements.network
        if self.hold is not None:
            self.hold.request = claimed  # the heartbeat follows it to its claim
        return Outcome.OK

    async def run(self) -> Outcome:
        # Settled: its claim's lease is renewed while it runs; not yet: its settling lease is,
        # so reconciliation does not settle it from under the run.
        try:
            self.result = await self.redemption.holding(self.hold or self.request, self.tool)
        except Exception as failure:
            self.failure = failure
            return Outcome.RAISED
        except BaseException as cancelled:
            self.failure = cancelled
            return Outcome.CANCELLED
        if not isinstance(self.result, CallToolResult) or self.result.is_error:
            return Outcome.FAILED
        return Outcome.OK

    async def run_while_settling(self) -> tuple[Outcome, Outcome]:
        """Settle while the tool runs: the settlement is shielded, so a cancelled call still
        records what the chain did; the run's heartbeat follows the request to its claim."""
        self.hold = Hold(self.request)
        settled: list[Outcome] = []

        async def settle() -> None:
            with anyio.CancelScope(shield=True):
                try:
                    settled.append(await self.settle())
                except Exception as odd:  # not an outcome: raised once the tool is done
                    self._odd.append(odd)

        ran = Outcome.CANCELLED
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(settle)
                ran = await self.run()
        except BaseException as cancelled:
            self.failure = cancelled
            ran = Outcome.CANCELLED
        if self._odd and ran is not Outcome.CANCELLED:
            raise self._odd[0]
        return (settled[0] if settled else Outcome.CRASHED), ran

    async def consume(self) -> Outcome:
        assert isinstance(self.result, CallToolResult)
        finished = await self._attempt(
            self.redemption.finish(self.request, self.result, network=self.network)
        )
        if isinstance(finished, Outcome):
            return finished
        self.result = finished
        return Outcome.OK

    async def refund(self, matched: Matched[Any], verdict: RefundRequested) -> SettleResponse:
        """Carry out the refund the scheme's verification asked for (the tool does not run): the
        request is payable again, nothing of it was paid; the refund's receipt.

        Raises:
            Refused: the scheme refused the refund.
            SettlementError / LedgerError: a crash (the request stays `settling`).
        """
        collector = self.collector
        scheme = collector.scheme_of(matched)
        settled = await scheme.settle(matched, verdict, charge=0)
        await collector.transition(self.request, Event.SETTLEMENT_FAILED)
        if isinstance(settled, Refusal):
            error = payment_error_for(settled.reason, settled.message)
            raise Refused(error, await collector.get(self.request.id))
        return scheme.receipt(settled)

    # -- commands and answers ---------------------------------------------------------------

    async def command(self, command: Command) -> None:
        # After an exception (a cancellation among them) the undo is shielded: it must land.
        with anyio.CancelScope(shield=self.failure is not None):
            if command is Command.RELEASE_CLAIM:
                await self.redemption.release(self.request)
            elif command is Command.RELEASE_PAYMENT:
                assert self.payment is not None
                await self.collector.release(self.request, self.payment.matched, self.payment.verdict)
            elif command is Command.REFUND:
                payment = self.payment
                assert payment is not None and isinstance(payment.verdict, RefundRequested)
                self.refunded = await self.refund(payment.matched, payment.verdict)
            else:
                raise SettlementError(f"the scheme of this payment cannot {command.value}")

    async def answer(self, answer: Answer) -> CallToolResult:
        """The call's answer; raises what the answer is to raise."""
        if answer is Answer.RESULT or answer is Answer.TOOL_FAILED:
            return self.result  # type: ignore[return-value]  # a door answers what its tool answered
        if answer is Answer.RERAISE:
            assert self.failure is not None
            raise self.failure
        if answer is Answer.REFUSE and self.refunded is not None:
            # A refund: the tool did not run; the answer is the refund's receipt.
            text = (
                f"Refund acknowledged: {self.refunded.amount or 'the unspent balance'} returned to the payer."
            )
            return refund_result(text, self.refunded)
        if answer is Answer.REFUSE or answer is Answer.CHALLENGE:
            assert self.refusal is not None
            raise self.refusal
        if answer is Answer.CRASH or answer is Answer.UNRECORDED:
            assert self.crash is not None
            raise self.crash
        if answer is Answer.WITHHELD:
            assert self.refusal is not None and self.withheld is not None
            return await self.withheld(self.request, self.refusal)
        if answer is Answer.UNCONFIRMED:
            assert self.crash is not None and self.unconfirmed is not None
            return self.unconfirmed(self.request, self.crash)
        shown = self.result if self.failure is None else raised(self.failure, self.tool_error)
        if answer is Answer.FAILED_BUT_PAID:
            # The payer was charged and the tool failed: the payment stays redeemable, once.
            logger.warning(
                "%r failed after %s settled; it stays paid for a retry",
                self.tool_name,
                self.request.id,
                exc_info=self.failure,
            )
            return with_note(shown, FAILED_BUT_PAID.format(tool=self.tool_name, request_id=self.request.id))
        assert answer is Answer.FAILED_UNCONFIRMED and self.crash is not None
        # The request stays `settling` with its payload, for reconciliation to ask the chain.
        part = failed_part(self.crash)
        logger.error(
            "settling %s failed in the %s while %r failed",
            self.request.id,
            part,
            self.tool_name,
            exc_info=self.crash,
        )
        note = FAILED_UNCONFIRMED.format(tool=self.tool_name, part=part, request_id=self.request.id)
        return with_note(shown, note)


async def execute(order: Order, execution: Execution) -> CallToolResult:
    """Carry out a `PaidRun` of `order` to its answer."""
    run = PaidRun(order)
    todo = list(run.start())
    while todo:
        command = todo.pop(0)
        if isinstance(command, Answer):
            return await execution.answer(command)
        if isinstance(command, Command):
            await execution.command(command)
        elif command is Step.RUN_WHILE_SETTLING:
            settled, ran = await execution.run_while_settling()
            run.report(Step.SETTLE, settled)
            todo = list(run.report(Step.RUN, ran))
        else:
            todo = list(run.report(command, await _STEPS[command](execution)))
    raise AssertionError("a paid run ended without an answer")


_STEPS: dict[Step, Callable[[Execution], Awaitable[Outcome]]] = {
    Step.VERIFY: Execution.verify,
    Step.SETTLE: Execution.settle,
    Step.RUN: Execution.run,
    Step.CONSUME: Execution.consume,
}

"""The payment flow of one paid tool call: facts in, decisions and commands out.

This module decides a paid call's fate. It does no I/O, reads no clock (the
time is a fact passed in) and holds no globals, in the spirit of h11's
`Connection` and httpx's `auth_flow`: a driver (`x402_mcp.gate.driver`) reads
the facts, asks here what to do, carries out each command against the ledger,
the scheme and the tool, and reports back what happened.

A call goes through three decisions:

1. `route`: what the call asks for, from its payment, its explicit
   `payment_request_id` and its caller: pay a fresh quote (an x402 v1 payment,
   which names no request), pay the request a payment names, redeem a request
   by id, redeem the caller's own paid request, or be quoted a price.
2. `judge_payment` / `judge_redemption`: what to do with the stored request it
   concerns: refuse (with the reason the payer is told), answer its challenge
   again, run the tool on what is already paid, or settle the payment and run.
3. `PaidRun`: settling and running (or running on a request paid already,
   `Order.REDEEM`), as one table of steps per settle order
   (`ORDERS`) and one table of what each step's outcome leads to (`_NEXT`,
   `_OVERLAPPED`). A run reports each step's `Outcome`; it answers the commands
   that follow, ending with an `Answer`.

The three settle orders of the x402 MCP transport are rows of `ORDERS`:
settle-then-run (the default), verify-run-settle (the spec's order) and
verify-run-while-settling (`overlap=True`).

Schemes that settle later. A scheme's verification may say more than "valid"
(`Outcome.OK`) or "refused": `DEFERRED` (the payment is escrowed, e.g. a
batch-settlement voucher: run, then commit the charge after success, with no
chain call; the run continues on the `CHARGE_AFTER_SUCCESS` row, whose SETTLE
step is the scheme's commit), `DO_NOT_RUN` (the tool must not run and the
payment is handed back: a `REFUND` command, then a refusal) and `CORRECTIVE`
(the payer must be challenged again with the scheme's corrective terms,
e.g. a voucher below the channel's charged total). The flow names no scheme,
chain or network: the driver dispatches VERIFY and SETTLE to the scheme that
matched the payment, so a new scheme adds a package, not a row here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import PaymentError, PaymentExpired, PaymentMismatch, UnknownPaymentRequest, X402MCPError
from .states import PaymentRequest, State, refusal_to_pay, underpaid
from .text import shown


class FlowError(X402MCPError):
    """A driver reported an event the flow is not waiting for (a bug in the driver)."""


# -- 1. what the call asks for ---------------------------------------------------------------


class Route(enum.StrEnum):
    PAY_FRESH_QUOTE = "pay a fresh quote"
    """An x402 v1 payment names no request: it pays a fresh quote of its call, at its price."""
    PAY_NAMED = "pay the named request"
    REDEEM_BY_ID = "redeem by id"
    """A paid id is a bearer capability: whoever presents it may redeem it, once."""
    REDEEM_OWN = "redeem the caller's own"
    """A plain retry redeems the oldest paid request of the caller it was issued to."""
    QUOTE = "quote"


def route(
    *, paying: bool, names_request: str | None, explicit_id: str | None, caller: str | None
) -> Route | PaymentError:
    """What a call asks for, or why it is refused.

    `paying`: it carries `_meta["x402/payment"]`; `names_request`: the request that
    payment names (None for an x402 v1 payment); `explicit_id`: its own
    `payment_request_id`; `caller`: its identity, if any.
    """
    if paying:
        if names_request is None:
            if explicit_id is not None:
                return PaymentMismatch(
                    "an x402 v1 payment pays for a fresh quote of the call it comes with; "
                    "leave out payment_request_id"
                )
            return Route.PAY_FRESH_QUOTE
        if explicit_id is not None and explicit_id != names_request:
            return PaymentMismatch(
                f"the payment pays payment request {shown(names_request)}, "
                f"but the call names {shown(explicit_id)}"
            )
        return Route.PAY_NAMED
    if explicit_id is not None:
        return Route.REDEEM_BY_ID
    if caller is not None:
        return Route.REDEEM_OWN
    return Route.QUOTE


# -- 2. what to do with the stored request -----------------------------------------------------


class Judgement(enum.StrEnum):
    SETTLE_AND_RUN = "settle the payment, then run (see PaidRun)"
    RUN_PAID = "run on the payment already settled (claim in one write)"
    CLAIM_PAID = "run on a paid request whose one-write claim found nothing (the transition says why)"
    CHALLENGE = "answer the request's challenge again"


def unknown_request(request_id: str) -> UnknownPaymentRequest:
    """What the caller hears of an id this server never quoted (unknown, or another
    server's sharing the ledger): the same words either way."""
    return UnknownPaymentRequest(f"there is no payment request {shown(request_id)}")


def uncovered(request: PaymentRequest, *, tool: str, price: int, decimals: int) -> PaymentError | None:
    """Why `request` cannot pay for this call of `tool` at `price`, if it cannot: every path
    that pays or redeems a request asks this, so none lets a request bought for one tool, or
    for a cheaper call, pay for another."""
    if request.tool != tool:
        return PaymentMismatch(f"payment request {request.id} is for tool {request.tool!r}, not {tool!r}")
    if request.price < price:
        return underpaid(request, price, decimals)
    return None


def payable_now(request: PaymentRequest, *, price: int, now: float, decimals: int) -> PaymentError | None:
    """Why `request` cannot take a payment for a call at `price` now, if it cannot."""
    refusal = refusal_to_pay(request, now)
    if refusal is not None:
        return refusal
    if request.price < price:
        return underpaid(request, price, decimals)
    return None


def _not_for(
    request: PaymentRequest | None, request_id: str, *, tool: str, price: int, decimals: int
) -> PaymentError | None:
    """Why stored `request` (None: unknown) cannot pay for this call at all, if it cannot."""
    if request is None:
        return unknown_request(request_id)
    return uncovered(request, tool=tool, price=price, decimals=decimals)


def judge_payment(
    request: PaymentRequest | None,
    request_id: str,
    *,
    tool: str,
    price: int,
    decimals: int,
    same_payment: bool,
) -> Judgement | PaymentError:
    """A payment for stored `request` (None: unknown): settle it, or run again on it when it is
    the very payment that already paid this request and the tool failed after."""
    refusal = _not_for(request, request_id, tool=tool, price=price, decimals=decimals)
    if refusal is not None or request is None:
        return refusal or unknown_request(request_id)
    if request.state in (State.PAID, State.REDEEMING) and same_payment:
        return Judgement.RUN_PAID
    # Whether it can take a payment now is the settlement's first check (`payable_now`):
    # it runs again under the payment's claim, so a concurrent call cannot slip between.
    return Judgement.SETTLE_AND_RUN


def judge_redemption(
    request: PaymentRequest | None, request_id: str, *, tool: str, price: int, decimals: int, now: float
) -> Judgement | PaymentError:
    """A call naming `request_id` without a payment, whose one-write claim took nothing."""
    refusal = _not_for(request, request_id, tool=tool, price=price, decimals=decimals)
    if refusal is not None or request is None:
        return refusal or unknown_request(request_id)
    if request.state is State.ISSUED:
        if request.is_expired(now):
            return PaymentExpired(f"payment request {shown(request_id)} expired unpaid")
        return Judgement.CHALLENGE
    return Judgement.CLAIM_PAID


# -- 3. settling and running -----------------------------------------------------------------


class Order(enum.StrEnum):
    SETTLE_THEN_RUN = "settle-then-run"
    VERIFY_RUN_SETTLE = "verify-run-settle"
    VERIFY_RUN_WHILE_SETTLING = "verify-run-while-settling"
    CHARGE_AFTER_SUCCESS = "charge-after-success"
    """Entered from VERIFY's `DEFERRED`: the payment is held, the charge is committed after success."""
    REDEEM = "redeem"
    """A request paid already (claimed for this run): run, then consume."""


def order_for(*, settle_after: bool, overlap: bool) -> Order:
    """The order a `@paid` tool asked for (`settle="after"`, `overlap=True`)."""
    if not settle_after:
        return Order.SETTLE_THEN_RUN
    return Order.VERIFY_RUN_WHILE_SETTLING if overlap else Order.VERIFY_RUN_SETTLE


class Step(enum.StrEnum):
    """A command whose outcome the driver reports back (`PaidRun.report`)."""

    VERIFY = "verify"
    SETTLE = "settle"
    RUN = "run"
    RUN_WHILE_SETTLING = "run while settling"
    """SETTLE and RUN at once; the driver reports each (`Step.SETTLE`, `Step.RUN`)."""
    CONSUME = "consume"


class Command(enum.StrEnum):
    """A command the driver carries out without reporting back (a failure of it propagates)."""

    RELEASE_CLAIM = "release the claim"
    """The run's claim ends: the request is `paid` again, redeemable once more."""
    RELEASE_PAYMENT = "release the payment"
    """Nothing was charged: the request is payable again (unless the chain shows the
    authorization used), or a scheme's held payment is let go."""
    REFUND = "refund"
    """The scheme hands the payment back (it must not run the tool)."""


class Answer(enum.StrEnum):
    """How the call ends; always the last command."""

    RESULT = "the tool's result, with the receipt"
    TOOL_FAILED = "the tool's own error result"
    RERAISE = "the tool's exception (or cancellation), raised again"
    REFUSE = "refuse the payment, with its reason"
    CRASH = "a backend failed before the tool ran"
    UNRECORDED = "the tool ran, the ledger failed recording it: output withheld"
    WITHHELD = "the tool ran, the settlement was refused: output withheld, pay again"
    UNCONFIRMED = "the tool ran, the settlement failed: output withheld until reconciled"
    FAILED_BUT_PAID = "the tool failed after its payment settled: note it stays paid"
    FAILED_UNCONFIRMED = "the tool failed while its settlement failed: note it is reconciled"
    CHALLENGE = "challenge again, with the scheme's corrective terms"


class Outcome(enum.StrEnum):
    """What a step came to, as the driver reports it."""

    OK = "ok"
    REFUSED = "refused"
    """The backend (or the ledger's compare-and-set) refused: the payer's fault; nothing moved."""
    CRASHED = "crashed"
    """A backend failed: money may have moved; only the chain can tell."""
    FAILED = "failed"
    """The tool answered an error result."""
    RAISED = "raised"
    """The tool raised an exception."""
    CANCELLED = "cancelled"
    """The call was cancelled while the tool ran."""
    DEFERRED = "deferred"
    """VERIFY: the payment is held; charge it after the tool succeeded (no chain call)."""
    DO_NOT_RUN = "do not run"
    """VERIFY: the tool must not run; the payment goes back (a refund)."""
    CORRECTIVE = "corrective"
    """VERIFY: the payer must be challenged again on the scheme's corrected terms."""


ORDERS: dict[Order, tuple[Step, ...]] = {
    Order.SETTLE_THEN_RUN: (Step.VERIFY, Step.SETTLE, Step.RUN, Step.CONSUME),
    Order.VERIFY_RUN_SETTLE: (Step.VERIFY, Step.RUN, Step.SETTLE, Step.CONSUME),
    Order.VERIFY_RUN_WHILE_SETTLING: (Step.VERIFY, Step.RUN_WHILE_SETTLING, Step.CONSUME),
    Order.CHARGE_AFTER_SUCCESS: (Step.VERIFY, Step.RUN, Step.SETTLE, Step.CONSUME),
    Order.REDEEM: (Step.RUN, Step.CONSUME),
}
"""The settle orders, as the steps each takes when every step goes well."""

Then = tuple[Command | Answer, ...]
NEXT: tuple[()] = ()
"""In `_NEXT`: go on to the order's next step."""

# What a step's outcome leads to, by (step, outcome, whether the tool already ran well,
# whether the payment already settled). What is not here is an event the flow does not await.
_NEXT: dict[tuple[Step, Outcome, bool, bool], Then] = {
    (Step.VERIFY, Outcome.OK, False, False): NEXT,
    (Step.VERIFY, Outcome.DEFERRED, False, False): NEXT,  # on the CHARGE_AFTER_SUCCESS row
    (Step.VERIFY, Outcome.REFUSED, False, False): (Answer.REFUSE,),
    (Step.VERIFY, Outcome.CRASHED, False, False): (Answer.CRASH,),
    (Step.VERIFY, Outcome.DO_NOT_RUN, False, False): (Command.REFUND, Answer.REFUSE),
    (Step.VERIFY, Outcome.CORRECTIVE, False, False): (Answer.CHALLENGE,),
    # Settling before the run: a refusal or a crash, and the tool never ran.
    (Step.SETTLE, Outcome.OK, False, False): NEXT,
    (Step.SETTLE, Outcome.REFUSED, False, False): (Answer.REFUSE,),
    (Step.SETTLE, Outcome.CRASHED, False, False): (Answer.CRASH,),
    # Settling after a run that succeeded: the output waits for the payment.
    (Step.SETTLE, Outcome.OK, True, False): NEXT,
    (Step.SETTLE, Outcome.REFUSED, True, False): (Answer.WITHHELD,),
    (Step.SETTLE, Outcome.CRASHED, True, False): (Answer.UNCONFIRMED,),
    # Running on a settled payment: a failed run keeps the payment for a retry.
    (Step.RUN, Outcome.OK, False, True): NEXT,
    (Step.RUN, Outcome.FAILED, False, True): (Command.RELEASE_CLAIM, Answer.TOOL_FAILED),
    (Step.RUN, Outcome.RAISED, False, True): (Command.RELEASE_CLAIM, Answer.RERAISE),
    (Step.RUN, Outcome.CANCELLED, False, True): (Command.RELEASE_CLAIM, Answer.RERAISE),
    # Running before settling: a failed run charges nothing.
    (Step.RUN, Outcome.OK, False, False): NEXT,
    (Step.RUN, Outcome.FAILED, False, False): (Command.RELEASE_PAYMENT, Answer.TOOL_FAILED),
    (Step.RUN, Outcome.RAISED, False, False): (Command.RELEASE_PAYMENT, Answer.RERAISE),
    (Step.RUN, Outcome.CANCELLED, False, False): (Command.RELEASE_PAYMENT, Answer.RERAISE),
    # Consuming after a good run on a settled payment.
    (Step.CONSUME, Outcome.OK, True, True): (Answer.RESULT,),
    (Step.CONSUME, Outcome.REFUSED, True, True): (Answer.REFUSE,),
    (Step.CONSUME, Outcome.CRASHED, True, True): (Answer.UNRECORDED,),
}

# RUN_WHILE_SETTLING: what the pair (settlement, run) leads to, once both are reported.
_OVERLAPPED: dict[tuple[Outcome, Outcome], Then] = {
    (Outcome.OK, Outcome.OK): NEXT,
    (Outcome.OK, Outcome.FAILED): (Command.RELEASE_CLAIM, Answer.FAILED_BUT_PAID),
    (Outcome.OK, Outcome.RAISED): (Command.RELEASE_CLAIM, Answer.FAILED_BUT_PAID),
    (Outcome.OK, Outcome.CANCELLED): (Command.RELEASE_CLAIM, Answer.RERAISE),
    # Refused: nothing moved, and the request is payable again already.
    (Outcome.REFUSED, Outcome.OK): (Answer.WITHHELD,),
    (Outcome.REFUSED, Outcome.FAILED): (Answer.TOOL_FAILED,),
    (Outcome.REFUSED, Outcome.RAISED): (Answer.RERAISE,),
    (Outcome.REFUSED, Outcome.CANCELLED): (Answer.RERAISE,),
    # Crashed: the request stays `settling` with its payload, for reconciliation.
    (Outcome.CRASHED, Outcome.OK): (Answer.UNCONFIRMED,),
    (Outcome.CRASHED, Outcome.FAILED): (Answer.FAILED_UNCONFIRMED,),
    (Outcome.CRASHED, Outcome.RAISED): (Answer.FAILED_UNCONFIRMED,),
    (Outcome.CRASHED, Outcome.CANCELLED): (Answer.RERAISE,),
}


@dataclass(slots=True)
class PaidRun:
    """Settling a payment and running its tool once, in one `Order`.

    `start()` answers the first command; after each `Step` the driver calls
    `report(step, outcome)` and carries out what it answers: commands, then either
    the next `Step` or an `Answer`, which ends the run.
    """

    order: Order
    ran_well: bool = False
    settled: bool = False
    done: bool = False
    _at: int = 0
    _overlapped: dict[Step, Outcome] | None = None

    def __post_init__(self) -> None:
        # A redemption runs on a payment that settled before this call: it holds its claim.
        self.settled = self.order is Order.REDEEM

    def start(self) -> Then | tuple[Step]:
        return (ORDERS[self.order][0],)

    @property
    def awaiting(self) -> Step | None:
        """The step whose outcome is awaited (None once answered)."""
        return None if self.done else ORDERS[self.order][self._at]

    def report(self, step: Step, outcome: Outcome) -> tuple[Command | Answer | Step, ...]:
        """What follows `step` coming to `outcome`.

        Raises:
            FlowError: the run is over, or is not awaiting `step`, or `outcome` is not
                one `step` can come to at this point.
        """
        awaiting = self.awaiting
        if awaiting is Step.RUN_WHILE_SETTLING and step in (Step.SETTLE, Step.RUN):
            return self._report_overlapped(step, outcome)
        if awaiting is not step:
            raise FlowError(f"{step.value} reported while awaiting {awaiting or 'nothing'}")
        then = _NEXT.get((step, outcome, self.ran_well, self.settled))
        if then is None:
            raise FlowError(f"{step.value} cannot come to {outcome.value} in {self.order.value} here")
        if outcome is Outcome.DEFERRED:
            self.order = Order.CHARGE_AFTER_SUCCESS
        if then == NEXT:
            self.settled = self.settled or step is Step.SETTLE
            self.ran_well = self.ran_well or step is Step.RUN
            return self._advance()
        self.done = True
        return then

    def _report_overlapped(self, step: Step, outcome: Outcome) -> tuple[Command | Answer | Step, ...]:
        reported = self._overlapped = self._overlapped or {}
        if step in reported:
            raise FlowError(f"{step.value} reported twice while running while settling")
        allowed = (
            {pair[0] for pair in _OVERLAPPED} if step is Step.SETTLE else {pair[1] for pair in _OVERLAPPED}
        )
        if outcome not in allowed:
            raise FlowError(f"{step.value} cannot come to {outcome.value} while running while settling")
        reported[step] = outcome
        if len(reported) < 2:
            return ()  # the other half is still out
        then = _OVERLAPPED[reported[Step.SETTLE], reported[Step.RUN]]
        self.settled = reported[Step.SETTLE] is Outcome.OK
        self.ran_well = reported[Step.RUN] is Outcome.OK
        if then == NEXT:
            return self._advance()
        self.done = True
        return then

    def _advance(self) -> tuple[Step]:
        self._at += 1
        return (ORDERS[self.order][self._at],)

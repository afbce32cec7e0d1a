"""What a lifecycle event writes, worked out before any SQL runs.

`SQLLedger` turns a `transition()` call into a `Change` here (and renders it
with `Queries.update`): which arguments an event needs, which columns it sets,
and which rows it may move are decided once, before any dialect is involved.
This module does no I/O.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, NotRequired, TypedDict, Unpack

from ..core.states import TRANSITIONS, Event, State, StateConflict
from ..core.text import shown
from ..errors import LedgerError, TooManyOpenRequests
from .base import Owner, PaymentRequest, SettlementRecord

#: Columns of `payment_requests`, in the order of the dataclass fields.
COLUMNS: tuple[str, ...] = tuple(field.name for field in fields(PaymentRequest))

#: Amounts are uint256 on chain; this bound (exclusive) also fits NUMERIC(78,0).
AMOUNT_LIMIT = 2**256


#: No id we mint or store is longer; a longer one names no request, so it is never queried.
MAX_ID_LENGTH = 100

#: Audit details are cut to this many characters: an attacker-sized text is never kept whole.
MAX_DETAIL_LENGTH = 500

#: A tool result larger than this (UTF-8 bytes) is stored as a note of its size and digest.
MAX_RESULT_BYTES = 64 * 1024


# Control characters and lone surrogates: never part of an id we could have stored.
_UNSTORABLE = frozenset({"Cc", "Cs"})


def possible_id(value: object) -> bool:
    """Whether `value` could name a stored request: a non-empty string of at most
    `MAX_ID_LENGTH` characters without control characters (NUL among them, which
    PostgreSQL cannot hold in TEXT) or lone surrogates (which no UTF-8 database
    can). Anything else is missing without a query."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID_LENGTH:
        return False
    if value.isascii() and value.isprintable():
        return True  # every id we mint: no control character, no surrogate
    return not any(unicodedata.category(char) in _UNSTORABLE for char in value)


def missing(request_id: object, event: Event) -> StateConflict:
    """The conflict for an id that cannot exist, its echo bounded."""
    return StateConflict(shown(request_id), event.value, None)


def bounded_detail(detail: str) -> str:
    """An audit detail as it is stored: at most `MAX_DETAIL_LENGTH` characters of it (then a
    note of how many more there were), control and direction-changing characters escaped."""
    return shown(detail, MAX_DETAIL_LENGTH)


def audit_line(request_id: str | None, event: str, detail: str) -> tuple[str | None, str, str]:
    """`(request_id, event, detail)` as an explicit audit line stores them.

    An id that cannot name a request is not stored as a request id (it could be
    attacker-sized); it goes, bounded, into the detail instead.
    """
    if request_id is not None and not possible_id(request_id):
        detail = f"for id {shown(request_id)}: {detail}"
        request_id = None
    return request_id, shown(event), bounded_detail(detail)


def stored_result(result: str) -> str:
    """The tool result as it is stored: itself when at most `MAX_RESULT_BYTES`, otherwise a
    note of its size and SHA-256 (the caller got the whole result; the ledger keeps proof)."""
    encoded = result.encode("utf-8", "surrogatepass")
    if len(encoded) <= MAX_RESULT_BYTES:
        return result
    return json.dumps(
        {
            "x402Omitted": "result larger than the ledger stores",
            "bytes": len(encoded),
            "sha256": hashlib.sha256(encoded).hexdigest(),
        }
    )


def cap_reached(caller: str | None, held: int, cap: int) -> TooManyOpenRequests:
    """The refusal for one more request past the cap on open requests."""
    if caller is None:
        return TooManyOpenRequests(
            f"{held} unpaid payment requests are open for callers without an identity (the limit"
            f" is {cap}); pay one of them (pass its payment_request_id) or try again later"
        )
    return TooManyOpenRequests(
        f"you already hold {held} unpaid payment requests (the limit is {cap}); "
        "pay one of them (pass its payment_request_id) or wait for them to expire"
    )


def check_amount(value: object, what: str) -> int:
    """Return `value` if it is a whole number of atomic units a token can hold.

    Raises:
        LedgerError: for a float, a bool, a Decimal, a negative number or one of 2**256 or more.
    """
    if type(value) is not int or not 0 <= value < AMOUNT_LIMIT:
        raise LedgerError(f"{what} must be an int of atomic units in [0, 2**256), not {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Change:
    """One compare-and-set on a payment request row.

    The row moves to `target` only if its state is one of `sources` (or, for a
    claim, it is `redeeming` under a lapsed lease), and, when
    `requires_unexpired`, only while `expires_at > now`.
    """

    event: Event
    sources: tuple[State, ...]
    target: State
    sets: tuple[tuple[str, object], ...]
    now: float
    reclaims_lapsed_lease: bool = False
    requires_unexpired: bool = False
    settlement: SettlementRecord | None = None
    detail: str = ""
    #: Consume/release only the claim with this id (a fencing token): a run whose
    #: lease lapsed and was taken over can no longer finish or undo the new claim.
    fence: str | None = None
    #: Move the row only if this server quoted it (None: any server's, for administration).
    owner: Owner | None = None


# Which optional `transition()` arguments each event takes; anything else given is a caller bug.
_ARGUMENTS: dict[Event, frozenset[str]] = {
    Event.BEGIN_SETTLEMENT: frozenset({"payload", "lease_until"}),
    # With a claim: the settling call goes on to run the tool, so the request moves straight to
    # `redeeming` under its claim and nobody else can redeem it in between.
    Event.SETTLED: frozenset({"settlement", "lease_until", "claim_id"}),
    Event.CLAIM: frozenset({"lease_until", "claim_id"}),
    Event.CONSUME: frozenset({"result", "claim_id"}),
    Event.RELEASE: frozenset({"claim_id"}),
}


class EventArguments(TypedDict, total=False):
    """The optional arguments of `Ledger.transition` that some events take (see `_ARGUMENTS`)."""

    payload: str | None
    settlement: SettlementRecord | None
    lease_until: float | None
    result: str | None
    claim_id: str | None


def plan_transition(
    event: Event, *, now: float, owner: Owner | None = None, **given: Unpack[EventArguments]
) -> Change:
    """The change `event` makes, with its arguments checked; with `owner`, only to a
    request that server quoted.

    Raises:
        LedgerError: an argument the event needs is missing, or one it does not
            take was given (nothing is written).
    """
    payload, settlement, result = given.get("payload"), given.get("settlement"), given.get("result")
    lease_until, claim_id = given.get("lease_until"), given.get("claim_id")
    allowed = _ARGUMENTS.get(event, frozenset())
    extra = sorted(name for name, value in given.items() if value is not None and name not in allowed)
    if extra:
        raise LedgerError(f"{event.value} takes no {', '.join(extra)}")
    transition = TRANSITIONS[event]
    sources = tuple(sorted(transition.sources))
    # A settlement recorded with the claim of the run that goes on to use it (the table says where).
    claimed = event is Event.SETTLED and (claim_id is not None or lease_until is not None)
    target = transition.target_for(claimed=claimed)
    sets: tuple[tuple[str, object], ...] = ()
    detail = f"-> {target.value}"
    if event is Event.BEGIN_SETTLEMENT:
        # The lease (optional) says until when the settler is presumed alive; past it, or past
        # the grace after `settling_since` without one, reconciliation may finish the
        # settlement from the stored payload (`states.settler_presumed_gone`).
        sets = (("payload", payload), ("lease_until", lease_until), ("settling_since", now))
    elif event is Event.SETTLEMENT_FAILED:
        sets = (("lease_until", None), ("settling_since", None))
    elif event is Event.SETTLED:
        if settlement is None:
            raise LedgerError("settled needs the settlement record it stores")
        check_amount(settlement.amount, "settlement amount")
        sets = (
            ("tx_hash", settlement.tx_hash),
            ("payer", settlement.payer),
            ("paid_at", settlement.settled_at),
            ("settling_since", None),
            ("lease_until", None),
        )
        if claimed:
            if claim_id is None:
                raise LedgerError("settled with a lease needs the claim_id of the run that holds it")
            lease_until = check_lease(lease_until, now)
            sets = (*sets[:4], ("lease_until", lease_until), ("claim_id", claim_id))
        detail += (
            f": tx {settlement.tx_hash} on {settlement.network},"
            f" {settlement.amount} units of {settlement.asset} from {settlement.payer}"
        )
        if claimed:
            detail += f"; claimed until {lease_until}"
    elif event is Event.CLAIM:
        lease_until = check_lease(lease_until, now)
        sets = (("lease_until", lease_until), ("claim_id", claim_id))
        detail += f" until {lease_until}"
    elif event is Event.CONSUME:
        stored = None if result is None else stored_result(result)
        sets = (("consumed_at", now), ("result", stored), ("lease_until", None), ("claim_id", None))
    elif event is Event.RELEASE:
        sets = (("lease_until", None), ("claim_id", None))
    return Change(
        event=event,
        sources=sources,
        target=target,
        sets=sets,
        now=now,
        reclaims_lapsed_lease=transition.reclaims_lapsed_lease,
        requires_unexpired=event is Event.BEGIN_SETTLEMENT,
        settlement=settlement,
        detail=detail,
        fence=claim_id if event in (Event.CONSUME, Event.RELEASE) else None,
        owner=owner,
    )


class ClaimTerms(TypedDict):
    """The arguments of `Ledger.claim` and `Ledger.claim_redeemable` but the request or caller."""

    tool: str
    price: int
    lease_until: float
    claim_id: str
    now: float
    owner: NotRequired[Owner | None]


def claim_of(terms: ClaimTerms) -> Change:
    """The CLAIM a redemption on `terms` makes (see `Ledger.claim`)."""
    now, lease_until, claim_id, owner = (
        terms["now"],
        terms["lease_until"],
        terms["claim_id"],
        terms.get("owner"),
    )
    return plan_transition(Event.CLAIM, now=now, lease_until=lease_until, claim_id=claim_id, owner=owner)


def check_lease(lease_until: float | None, now: float) -> float:
    """`lease_until`, checked to lie after `now`.

    Raises:
        LedgerError: a lease that has already lapsed would void the claim the moment it is held.
    """
    if lease_until is None or lease_until <= now:
        raise LedgerError(f"a lease needs a lease_until later than now ({now}), not {lease_until!r}")
    return lease_until


def expires_instead(change: Change, state: State, expires_at: float) -> bool:
    """Whether a refused `change` found a request that it must expire instead.

    A settlement must not start on a quote past its expiry; the ledger then
    records the request as expired, so it shows what the caller was told.
    """
    return change.event is Event.BEGIN_SETTLEMENT and state == State.ISSUED and expires_at <= change.now


def expiry(now: float, reason: str, owner: Owner | None = None) -> Change:
    """The change that expires an issued request (of `owner`, when given), with `reason` in
    its audit line."""
    change = plan_transition(Event.EXPIRE, now=now, owner=owner)
    return replace(change, detail=f"{change.detail}: {reason}")


def request_values(request: PaymentRequest, *, amount: Callable[[int], object]) -> list[object]:
    """The request's column values in `COLUMNS` order, its price passed through `amount`.

    Raises:
        LedgerError: the id is one no lookup would find (see `possible_id`), the
            request is not freshly `issued`, or its price is not a valid amount.
    """
    if not possible_id(request.id):
        raise LedgerError(f"payment request id {shown(request.id)} cannot be stored: it could never be found")
    if request.state is not State.ISSUED:
        raise LedgerError(f"issue stores new requests only; {request.id} is {request.state.value}")
    return [
        amount(check_amount(request.price, "price")) if column == "price" else getattr(request, column)
        for column in COLUMNS
    ]


def request_from_row(row: Sequence[Any]) -> PaymentRequest:
    """A `PaymentRequest` from a row selected as `COLUMNS` (price as text, int or Decimal)."""
    values = dict(zip(COLUMNS, row, strict=True))
    values["price"] = int(values["price"])
    values["state"] = State(values["state"])
    return PaymentRequest(**values)


def settlement_from_row(row: Sequence[Any]) -> SettlementRecord:
    """A `SettlementRecord` from (tx_hash, payer, amount, asset, network, settled_at)."""
    tx_hash, payer, amount, asset, network, settled_at = row
    return SettlementRecord(tx_hash, payer, int(amount), asset, network, float(settled_at))


def duplicate_settlement(settlement: SettlementRecord) -> LedgerError:
    """The error for a settlement whose transaction already paid for a request."""
    return LedgerError(
        f"settlement {settlement.tx_hash} on {settlement.network} is already recorded:"
        " one settlement pays for one request"
    )


def issue_detail(request: PaymentRequest) -> str:
    """The audit line written when a request is issued."""
    return (
        f"{request.tool}: {request.price} units of {request.asset} on {request.network} to {request.pay_to}"
    )

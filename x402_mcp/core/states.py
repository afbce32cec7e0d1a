"""The payment request state machine, its records, and what each state means to a payer.

```
issued ──begin_settlement──> settling ──settled──> paid ──claim──> redeeming ──consume──> consumed
  │                             │  └──settled with a claim──────────────^  │
  │                             └─settlement_failed─> issued   paid <──release─┘
  └──expire──> expired
```

A call that settles a payment and goes on to run the tool records `settled`
with its claim (lease and fencing token): the request moves `settling →
redeeming` in that one write (`Transition.claimed_target`), and is `paid` only
once the run releases it (or its lease lapses). A payment settled on the page
is `paid` at once.

`settling` and `redeeming` are short-lived holds. A `settling` row keeps the
signed payload and the time its settlement began (`settling_since`), so a
crash between broadcasting and recording can be reconciled from the chain once
its settler is presumed gone (`settler_presumed_gone`). A `redeeming` claim
carries a lease; a lapsed lease (`lease_lapsed`) makes the request redeemable
again (the run that held it died). Ledgers apply a transition as one
compare-and-set on the state column, which is what makes "one payment, one
execution" hold under concurrency; their SQL renders these same rules
(`ledger._sql`), and the ledger contract tests hold the two to each other.

This module does no I/O and reads no clock: every rule takes `now`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import (
    LedgerError,
    PaymentError,
    PaymentExpired,
    PaymentInProgress,
    PaymentMismatch,
    PaymentReplayed,
    UnknownPaymentRequest,
)
from .money import format_usd


class State(enum.StrEnum):
    ISSUED = "issued"
    SETTLING = "settling"
    PAID = "paid"
    REDEEMING = "redeeming"
    CONSUMED = "consumed"
    EXPIRED = "expired"


class Event(enum.StrEnum):
    BEGIN_SETTLEMENT = "begin_settlement"
    SETTLED = "settled"
    SETTLEMENT_FAILED = "settlement_failed"
    CLAIM = "claim"
    CONSUME = "consume"
    RELEASE = "release"
    EXPIRE = "expire"


@dataclass(frozen=True, slots=True)
class Transition:
    """Where an event may move a request from, and to.

    `claimed_target`: where it goes instead when the event is recorded together with a
    claim for the run that goes on to use it (a settlement recorded with its run's claim).
    `reclaims_lapsed_lease`: it also moves a request held under a lapsed lease.
    """

    sources: frozenset[State]
    target: State
    claimed_target: State | None = None
    reclaims_lapsed_lease: bool = False

    def target_for(self, *, claimed: bool) -> State:
        if claimed and self.claimed_target is None:
            raise LedgerError(f"{self.target.value} cannot be reached with a claim")
        return self.claimed_target if claimed and self.claimed_target is not None else self.target


TRANSITIONS: dict[Event, Transition] = {
    Event.BEGIN_SETTLEMENT: Transition(frozenset({State.ISSUED}), State.SETTLING),
    Event.SETTLED: Transition(frozenset({State.SETTLING}), State.PAID, claimed_target=State.REDEEMING),
    Event.SETTLEMENT_FAILED: Transition(frozenset({State.SETTLING}), State.ISSUED),
    Event.CLAIM: Transition(frozenset({State.PAID}), State.REDEEMING, reclaims_lapsed_lease=True),
    Event.CONSUME: Transition(frozenset({State.REDEEMING}), State.CONSUMED),
    Event.RELEASE: Transition(frozenset({State.REDEEMING}), State.PAID),
    Event.EXPIRE: Transition(frozenset({State.ISSUED}), State.EXPIRED),
}

REDEEMABLE = frozenset({State.PAID})
FINAL = frozenset({State.CONSUMED, State.EXPIRED})
LEASED = State.REDEEMING
"""The state whose holder's lease may lapse, making the request redeemable again."""


def target_of(event: Event, current: State) -> State | None:
    """The state `event` leads to from `current`, or None when it is not allowed."""
    transition = TRANSITIONS[event]
    return transition.target if current in transition.sources else None


def lease_lapsed(lease_until: float | None, now: float) -> bool:
    """Whether a lease ran out before `now` (the SQL's `lease_until < now`): its holder is
    presumed dead. A lease ending exactly now still holds."""
    return lease_until is not None and lease_until < now


def claimable(state: State, lease_until: float | None, now: float) -> bool:
    """Whether a request may be claimed for a run now: paid, or held under a lapsed lease."""
    return state in REDEEMABLE or (state is LEASED and lease_lapsed(lease_until, now))


class StateConflict(LedgerError):
    """A payment request was not in a state that allows the requested transition.

    `current` is the state that refused it, or None when there is no such request
    (or it is another server's).
    """

    def __init__(self, request_id: str, event: Event | str, current: State | None) -> None:
        self.request_id = request_id
        self.event = str(event)
        self.current = current
        shown_state = current.value if current is not None else "missing"
        super().__init__(f"cannot {self.event} payment request {request_id}: it is {shown_state}")


# -- the records ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    """One settlement on chain: what moved, from whom, in which transaction."""

    tx_hash: str
    payer: str
    amount: int
    asset: str
    network: str
    settled_at: float


@dataclass(frozen=True, slots=True)
class PaymentKey:
    """What makes a payment one payment, whichever request it is presented for.

    EVM: the network, the payer and the EIP-3009 nonce of the signed
    authorization (both lower-cased). Solana: the network, an empty payer and
    the SHA-256 of the message the payer signed (`sha256:<hex>`).
    """

    network: str
    payer: str
    nonce: str


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """A price quoted to one caller for one tool call, and what became of it.

    `price` is in atomic units of `asset`. `caller` is who it was issued to
    (`stdio:<uuid>`, `session:<Mcp-Session-Id>`, `principal:<id>`), or None when
    the host gave no identity and the id itself is the capability.
    `settling_since` is when its current settlement began (set only while `settling`).
    """

    id: str
    tool: str
    price: int
    asset: str
    network: str
    pay_to: str
    caller: str | None
    created_at: float
    expires_at: float
    max_timeout_seconds: int
    state: State = State.ISSUED
    description: str = ""
    payload: str | None = None
    tx_hash: str | None = None
    payer: str | None = None
    paid_at: float | None = None
    lease_until: float | None = None
    consumed_at: float | None = None
    result: str | None = None
    claim_id: str | None = None
    settling_since: float | None = None

    def is_expired(self, now: float) -> bool:
        return self.state is State.ISSUED and now >= self.expires_at


@dataclass(frozen=True, slots=True)
class Owner:
    """The server a payment request belongs to: the payee, network and asset it quoted.

    Several servers may share one ledger; a request is theirs to settle, redeem, expire
    or reconcile only when all three match (the ledger's `owner=` arguments put this in
    the SQL, so a foreign row is never read or moved). The values are compared exactly
    as the quoting server stored them (a checksummed payee, the CAIP-2 network, the
    token address).
    """

    pay_to: str
    network: str
    asset: str

    @classmethod
    def of(cls, request: PaymentRequest) -> Owner:
        """The owner that quoted `request`."""
        return cls(request.pay_to, request.network, request.asset)

    def owns(self, request: PaymentRequest) -> bool:
        """Whether `request` was quoted by this server (the predicate the SQL also applies)."""
        return (request.pay_to, request.network, request.asset) == (self.pay_to, self.network, self.asset)

    def values(self) -> list[object]:
        """The parameters of `Queries.owned`, in its order."""
        return [self.pay_to, self.network, self.asset]


@dataclass(frozen=True, slots=True)
class Claim:
    """A paid request claimed for one run (`Ledger.claim`), and where it was paid.

    `network` is the network of its latest recorded settlement (a request can be
    paid on Solana as well as on its own network), or None when none is recorded.
    """

    request: PaymentRequest
    network: str | None


def settler_presumed_gone(request: PaymentRequest, now: float, grace_seconds: float) -> bool:
    """Whether a `settling` request's settler is presumed dead at `now`, so reconciliation
    may finish its settlement from the chain: its settling lease (renewed while a tool
    runs in the spec's order) lapsed, or, without one, it began more than
    `grace_seconds` ago (or when, nobody recorded)."""
    if request.state is not State.SETTLING:
        return False
    if request.lease_until is not None:
        return lease_lapsed(request.lease_until, now)
    return request.settling_since is None or request.settling_since + grace_seconds < now


# -- what each state means to a payer ---------------------------------------------------------


def refusal_to_pay(request: PaymentRequest, now: float) -> PaymentError | None:
    """Why `request` cannot take a payment now, as the payer is told; None when it can."""
    if request.state is State.CONSUMED:
        return PaymentReplayed(f"payment request {request.id} was already paid and used")
    if request.state in (State.PAID, State.REDEEMING):
        return PaymentReplayed(
            f"payment request {request.id} is already paid; call the tool again without a payment to use it"
        )
    if request.state is State.SETTLING:
        return PaymentInProgress(f"payment request {request.id} is being settled by another call")
    if request.state is State.EXPIRED or request.is_expired(now):
        return PaymentExpired(f"payment request {request.id} has expired; pay the new one")
    return None


def underpaid(request: PaymentRequest, price: int, decimals: int) -> PaymentMismatch:
    """The refusal of `request` for a call dearer than it was quoted for (x402's value mismatch)."""
    return PaymentMismatch(
        f"payment request {request.id} covers {format_usd(request.price, decimals)}, "
        f"but this call costs {format_usd(price, decimals)}",
        reason="invalid_exact_evm_payload_authorization_value_mismatch",
    )


_MOVED_ON: dict[State | None, tuple[type[PaymentError], str]] = {
    State.SETTLING: (PaymentInProgress, "is in use by another call; try again"),
    State.REDEEMING: (PaymentInProgress, "is in use by another call; try again"),
    State.CONSUMED: (PaymentReplayed, "was already used"),
    State.EXPIRED: (PaymentExpired, "has expired"),
    State.PAID: (PaymentReplayed, "is already paid"),
}


def refusal_after_conflict(conflict: StateConflict) -> PaymentError:
    """What the payer is told when a request moved under their call (a lost compare-and-set)."""
    kind, what = _MOVED_ON.get(conflict.current, (UnknownPaymentRequest, ""))
    if kind is UnknownPaymentRequest:
        shown_state = conflict.current.value if conflict.current is not None else "missing"
        return UnknownPaymentRequest(f"payment request {conflict.request_id} is not payable ({shown_state})")
    return kind(f"payment request {conflict.request_id} {what}")

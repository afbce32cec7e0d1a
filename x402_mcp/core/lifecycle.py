"""The payment request state machine, as data.

```
issued ──begin_settlement──> settling ──settled──> paid ──claim──> redeeming ──consume──> consumed
  │                             │                   ^                  │
  │                             └─settlement_failed─┘ (back to issued) └──release──> paid
  └──expire──> expired
```

A call that settles a payment and goes on to run the tool records `settled`
with its claim (lease and fencing token): the request moves `settling →
redeeming` in that one write, and is `paid` only once the run releases it (or
its lease lapses). A payment settled on the page is `paid` at once.

`settling` and `redeeming` are short-lived claims: a row in `settling` holds
the signed payload, so a crash between broadcasting and recording can be
reconciled from the chain; a `redeeming` claim carries a lease, and a lapsed
lease makes the request redeemable again (the tool run that held it died).
Ledgers apply a transition as one compare-and-set on the state column, which
is what makes "one payment, one execution" hold under concurrency.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


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
    sources: frozenset[State]
    target: State


TRANSITIONS: dict[Event, Transition] = {
    Event.BEGIN_SETTLEMENT: Transition(frozenset({State.ISSUED}), State.SETTLING),
    Event.SETTLED: Transition(frozenset({State.SETTLING}), State.PAID),
    Event.SETTLEMENT_FAILED: Transition(frozenset({State.SETTLING}), State.ISSUED),
    # A redeeming row whose lease has lapsed is also claimable; ledgers add that condition.
    Event.CLAIM: Transition(frozenset({State.PAID}), State.REDEEMING),
    Event.CONSUME: Transition(frozenset({State.REDEEMING}), State.CONSUMED),
    Event.RELEASE: Transition(frozenset({State.REDEEMING}), State.PAID),
    Event.EXPIRE: Transition(frozenset({State.ISSUED}), State.EXPIRED),
}

REDEEMABLE = frozenset({State.PAID})
FINAL = frozenset({State.CONSUMED, State.EXPIRED})


def target_of(event: Event, current: State) -> State | None:
    """The state `event` leads to from `current`, or None when it is not allowed."""
    transition = TRANSITIONS[event]
    return transition.target if current in transition.sources else None

"""A request belongs to the server that quoted it: with `owner=`, every ledger read and write
treats another server's request (another payee, network or asset) as missing, on every backend.

Each foreign owner differs from the quoting one in one part only, so each part is shown to count.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from x402_mcp.core.states import Event, State, StateConflict
from x402_mcp.errors import TooManyOpenRequests
from x402_mcp.ledger import Ledger
from x402_mcp.ledger.base import Owner, PaymentRequest

from .test_contract import LEASE, NOW, PAYEE, TEMPLATE, USDC, arguments, issued_in, new_request

pytestmark = pytest.mark.anyio

QUOTER = Owner(PAYEE, TEMPLATE.network, USDC)
FOREIGN = {
    "another payee": replace(QUOTER, pay_to="0x" + "Ab" * 20),
    "another network": replace(QUOTER, network="eip155:8453"),
    "another asset": replace(QUOTER, asset="0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
}


@pytest.fixture(params=list(FOREIGN))
def foreign(request: pytest.FixtureRequest) -> Owner:
    return FOREIGN[str(request.param)]


async def snapshot(ledger: Ledger, request_id: str) -> tuple[Any, ...]:
    """Everything the ledger keeps of one request."""
    return (
        await ledger.get(request_id),
        await ledger.settlements(request_id),
        await ledger.audit_trail(request_id),
    )


def test_an_owner_owns_exactly_the_requests_it_quoted() -> None:
    assert QUOTER.owns(TEMPLATE) and Owner.of(TEMPLATE) == QUOTER
    assert not any(owner.owns(TEMPLATE) for owner in FOREIGN.values())


async def test_another_servers_request_is_not_found(ledger: Ledger, foreign: Owner) -> None:
    paid = await issued_in(ledger, State.PAID)

    assert await ledger.get(paid.id, owner=foreign) is None
    assert await ledger.get(paid.id, owner=QUOTER) == paid
    assert (
        await ledger.find_redeemable(tool=paid.tool, caller=str(paid.caller), now=NOW, owner=foreign) is None
    )
    assert await ledger.requests(owner=foreign) == []
    assert [r.id for r in await ledger.requests(states=[State.PAID], owner=QUOTER)] == [paid.id]


@pytest.mark.parametrize("state", [State.PAID, State.REDEEMING])
async def test_another_server_claims_nothing_and_writes_nothing(
    ledger: Ledger, foreign: Owner, state: State
) -> None:
    request = await issued_in(ledger, state)
    later = NOW + LEASE + 1  # a redeeming request's lease has lapsed: claimable, but not by them
    before = await snapshot(ledger, request.id)

    by_id = await ledger.claim(
        request.id,
        tool=request.tool,
        price=1,
        lease_until=later + LEASE,
        claim_id="x",
        now=later,
        owner=foreign,
    )
    implicit = await ledger.claim_redeemable(
        tool=request.tool,
        caller=str(request.caller),
        price=1,
        lease_until=later + LEASE,
        claim_id="x",
        now=later,
        owner=foreign,
    )

    assert by_id is None and implicit is None
    assert await snapshot(ledger, request.id) == before
    # Still its own server's to redeem.
    taken = await ledger.claim(
        request.id,
        tool=request.tool,
        price=request.price,
        lease_until=later + LEASE,
        claim_id="own",
        now=later,
        owner=QUOTER,
    )
    assert taken is not None and taken.request.claim_id == "own"


async def test_a_callers_older_foreign_request_does_not_hide_its_own(ledger: Ledger, foreign: Owner) -> None:
    theirs = await issued_in(ledger, State.PAID, created_at=NOW - 10)
    ours = await issued_in(
        ledger, State.PAID, pay_to=foreign.pay_to, network=foreign.network, asset=foreign.asset
    )

    found = await ledger.find_redeemable(tool=ours.tool, caller=str(ours.caller), now=NOW, owner=foreign)
    taken = await ledger.claim_redeemable(
        tool=ours.tool,
        caller=str(ours.caller),
        price=ours.price,
        lease_until=NOW + LEASE,
        claim_id="c",
        now=NOW,
        owner=foreign,
    )

    assert found == ours
    assert taken is not None and taken.request.id == ours.id
    assert (await ledger.get(theirs.id)) == theirs


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (State.ISSUED, Event.BEGIN_SETTLEMENT),
        (State.ISSUED, Event.EXPIRE),
        (State.SETTLING, Event.SETTLED),
        (State.SETTLING, Event.SETTLEMENT_FAILED),
        (State.PAID, Event.CLAIM),
        (State.REDEEMING, Event.CONSUME),
        (State.REDEEMING, Event.RELEASE),
    ],
)
async def test_no_transition_moves_another_servers_request(
    ledger: Ledger, foreign: Owner, state: State, event: Event
) -> None:
    request = await issued_in(ledger, state)
    changes = arguments(event, request.id)
    if event in (Event.CONSUME, Event.RELEASE):
        changes["claim_id"] = request.claim_id
    if event is Event.CLAIM:
        changes["claim_id"] = "x"
    before = await snapshot(ledger, request.id)

    with pytest.raises(StateConflict) as conflict:
        await ledger.transition(request.id, event, now=NOW, owner=foreign, **changes)

    # Told exactly what an unknown id is told: no state of theirs leaks.
    assert conflict.value.current is None
    assert await snapshot(ledger, request.id) == before
    moved = await ledger.transition(request.id, event, now=NOW, owner=QUOTER, **changes)
    assert moved.state is not state or event is Event.RELEASE


async def test_an_overdue_foreign_request_is_not_expired_at_settlement(
    ledger: Ledger, foreign: Owner
) -> None:
    request = await issued_in(ledger, State.ISSUED)

    with pytest.raises(StateConflict) as conflict:
        await ledger.transition(
            request.id, Event.BEGIN_SETTLEMENT, now=request.expires_at + 1, payload="{}", owner=foreign
        )

    assert conflict.value.current is None
    assert await ledger.get(request.id) == request


async def test_sweeping_leaves_another_servers_requests(ledger: Ledger, foreign: Owner) -> None:
    overdue = await issued_in(ledger, State.ISSUED)
    expired = await issued_in(ledger, State.EXPIRED)
    consumed = await issued_in(ledger, State.CONSUMED)
    assert consumed.result is not None
    later = NOW + 10_000

    assert await ledger.expire_overdue(now=later, owner=foreign) == []
    assert await ledger.purge_expired(before=later, owner=foreign) == 0
    assert await ledger.clear_results(before=later, owner=foreign) == 0
    assert await ledger.get(overdue.id) == overdue
    assert await ledger.get(expired.id) == expired
    assert await ledger.get(consumed.id) == consumed
    # Their own server sweeps them.
    assert await ledger.expire_overdue(now=later, owner=QUOTER) == [overdue.id]
    assert await ledger.purge_expired(before=later, owner=QUOTER) == 2
    assert await ledger.clear_results(before=later, owner=QUOTER) == 1


async def test_the_cap_on_open_requests_is_each_servers_own(ledger: Ledger, foreign: Owner) -> None:
    await ledger.issue(new_request(), max_open=1)
    with pytest.raises(TooManyOpenRequests):
        await ledger.issue(new_request(), max_open=1)

    theirs: PaymentRequest = new_request(pay_to=foreign.pay_to, network=foreign.network, asset=foreign.asset)
    await ledger.issue(theirs, max_open=1)

    assert await ledger.count_open(caller=TEMPLATE.caller, now=NOW, owner=QUOTER) == 1
    assert await ledger.count_open(caller=TEMPLATE.caller, now=NOW, owner=foreign) == 1
    assert await ledger.count_open(caller=TEMPLATE.caller, now=NOW) == 2

"""Ledger additions for replicas and bounded state, on both backends: fencing, listing, sweeping."""

from __future__ import annotations

import pytest

from x402_mcp.core.states import Event, State, StateConflict
from x402_mcp.errors import LedgerError
from x402_mcp.ledger import Ledger

from .test_contract import LEASE, NOW, issued_in, new_request

pytestmark = pytest.mark.anyio


async def test_a_lapsed_claim_cannot_consume_after_another_run_took_over(ledger: Ledger) -> None:
    request = await issued_in(ledger, State.PAID)
    first = await ledger.transition(
        request.id, Event.CLAIM, now=NOW, lease_until=NOW + LEASE, claim_id="run-a"
    )
    assert first.claim_id == "run-a"
    later = NOW + LEASE + 1
    second = await ledger.transition(
        request.id, Event.CLAIM, now=later, lease_until=later + LEASE, claim_id="run-b"
    )
    assert second.claim_id == "run-b"

    for event, extra in ((Event.CONSUME, {"result": "{}"}), (Event.RELEASE, {})):
        with pytest.raises(StateConflict):
            await ledger.transition(request.id, event, now=later, claim_id="run-a", **extra)
    still = await ledger.get(request.id)
    assert still is not None and (still.state, still.claim_id) == (State.REDEEMING, "run-b")

    consumed = await ledger.transition(request.id, Event.CONSUME, now=later, result="{}", claim_id="run-b")
    assert (consumed.state, consumed.claim_id, consumed.lease_until) == (State.CONSUMED, None, None)


async def test_release_by_the_holder_clears_the_claim(ledger: Ledger) -> None:
    request = await issued_in(ledger, State.PAID)
    await ledger.transition(request.id, Event.CLAIM, now=NOW, lease_until=NOW + LEASE, claim_id="run-a")
    released = await ledger.transition(request.id, Event.RELEASE, now=NOW, claim_id="run-a")
    assert (released.state, released.claim_id) == (State.PAID, None)


async def test_a_settling_lease_is_stored_and_cleared_by_the_outcome(ledger: Ledger) -> None:
    request = new_request()
    await ledger.issue(request)
    settling = await ledger.transition(
        request.id, Event.BEGIN_SETTLEMENT, now=NOW, payload="{}", lease_until=NOW + 60
    )
    assert settling.lease_until == NOW + 60
    failed = await ledger.transition(request.id, Event.SETTLEMENT_FAILED, now=NOW)
    assert failed.lease_until is None
    with pytest.raises(LedgerError, match="takes no claim_id"):
        await ledger.transition(request.id, Event.BEGIN_SETTLEMENT, now=NOW, payload="{}", claim_id="x")


async def test_requests_lists_newest_first_filtered_by_state(ledger: Ledger) -> None:
    old = await issued_in(ledger, State.PAID, created_at=NOW - 10)
    new = await issued_in(ledger, State.ISSUED, created_at=NOW - 5)
    settling = await issued_in(ledger, State.SETTLING, created_at=NOW - 1)
    assert [r.id for r in await ledger.requests()] == [settling.id, new.id, old.id]
    assert [r.id for r in await ledger.requests(limit=2)] == [settling.id, new.id]
    assert await ledger.requests(states=[State.SETTLING]) == [settling]
    assert await ledger.requests(states=[]) == []


async def test_count_open_counts_only_unpaid_unexpired_requests_of_that_caller(ledger: Ledger) -> None:
    for _ in range(3):
        await issued_in(ledger, State.ISSUED, caller="session:a")
    await issued_in(ledger, State.ISSUED, caller="session:a", expires_at=NOW - 1)
    await issued_in(ledger, State.PAID, caller="session:a")
    await issued_in(ledger, State.ISSUED, caller="session:b")
    assert await ledger.count_open(caller="session:a", now=NOW) == 3
    assert await ledger.count_open(caller="session:b", now=NOW) == 1
    assert await ledger.count_open(caller="session:c", now=NOW) == 0


async def test_expired_requests_are_purged_after_retention_but_paid_ones_never(ledger: Ledger) -> None:
    stale = await issued_in(ledger, State.ISSUED, expires_at=NOW - 100)
    fresh = await issued_in(ledger, State.ISSUED, expires_at=NOW + 100)
    paid = await issued_in(ledger, State.PAID, expires_at=NOW + 1)
    assert await ledger.expire_overdue(now=NOW) == [stale.id]
    assert await ledger.purge_expired(before=NOW - 200) == 0  # still within retention
    assert await ledger.purge_expired(before=NOW + 1000) == 1  # deletes what is expired, only
    assert await ledger.get(stale.id) is None
    assert await ledger.audit_trail(stale.id) == []
    assert (await ledger.get(fresh.id)) is not None
    kept = await ledger.get(paid.id)
    assert kept is not None and kept.state is State.PAID
    assert len(await ledger.settlements(paid.id)) == 1

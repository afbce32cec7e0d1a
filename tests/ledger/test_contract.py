"""The `Ledger` contract, run against every backend (see `store` in conftest.py)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from functools import partial
from typing import Any

import anyio
import pytest

from x402_mcp.core.states import Event, State, StateConflict, claimable, target_of
from x402_mcp.errors import LedgerError
from x402_mcp.ledger import Ledger, PaymentRequest, SettlementRecord
from x402_mcp.ledger._migrations import ledger_migrations
from x402_mcp.ledger.sqlite import SQLITE

from .conftest import Store

pytestmark = pytest.mark.anyio

NOW = 1_700_000_000.125
LEASE = 30.0
USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
PAYEE = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
PAYER = "0x857b06519E91e3A54538791bDbb0E22373e36b66"

TEMPLATE = PaymentRequest(
    id="pr_template",
    tool="research_query",
    price=50_000,
    asset=USDC,
    network="eip155:84532",
    pay_to=PAYEE,
    caller="session:7f3a",
    created_at=NOW,
    expires_at=NOW + 300,
    max_timeout_seconds=300,
    description="one research query",
)

# From `issued`, the events that lead to each state.
PATHS: dict[State, tuple[Event, ...]] = {
    State.ISSUED: (),
    State.SETTLING: (Event.BEGIN_SETTLEMENT,),
    State.PAID: (Event.BEGIN_SETTLEMENT, Event.SETTLED),
    State.REDEEMING: (Event.BEGIN_SETTLEMENT, Event.SETTLED, Event.CLAIM),
    State.CONSUMED: (Event.BEGIN_SETTLEMENT, Event.SETTLED, Event.CLAIM, Event.CONSUME),
    State.EXPIRED: (Event.EXPIRE,),
}


def new_request(**changes: Any) -> PaymentRequest:
    return replace(TEMPLATE, id=f"pr_{secrets.token_hex(16)}", **changes)


def settlement_for(request_id: str, amount: int = 50_000, at: float = NOW) -> SettlementRecord:
    return SettlementRecord(f"0x{secrets.token_hex(32)}", PAYER, amount, USDC, "eip155:84532", at)


def arguments(event: Event, request_id: str) -> dict[str, Any]:
    """What `transition` needs with `event` (and nothing else)."""
    return {
        Event.BEGIN_SETTLEMENT: {"payload": f'{{"for": "{request_id}"}}'},
        Event.SETTLED: {"settlement": settlement_for(request_id)},
        Event.CLAIM: {"lease_until": NOW + LEASE},
        Event.CONSUME: {"result": '{"content": []}'},
    }.get(event, {})


async def issued_in(ledger: Ledger, state: State, **changes: Any) -> PaymentRequest:
    """A new request, moved along the lifecycle to `state`."""
    request = new_request(**changes)
    await ledger.issue(request)
    for event in PATHS[state]:
        request = await ledger.transition(request.id, event, now=NOW, **arguments(event, request.id))
    assert request.state is state
    return request


async def race(
    attempts: list[Callable[[], Awaitable[PaymentRequest]]],
) -> tuple[list[PaymentRequest], list[StateConflict]]:
    """Run every attempt at once; the ones that won and the conflicts of those that lost."""
    won: list[PaymentRequest] = []
    lost: list[StateConflict] = []

    async def attempt(run: Callable[[], Awaitable[PaymentRequest]]) -> None:
        try:
            won.append(await run())
        except StateConflict as conflict:
            lost.append(conflict)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            for run in attempts:
                group.start_soon(attempt, run)
    return won, lost


# -- issue and get ---------------------------------------------------------------------------------


async def test_ledger_satisfies_the_protocol(ledger: Ledger) -> None:
    assert isinstance(ledger, Ledger)


async def test_issue_then_get_returns_every_field_exactly(ledger: Ledger) -> None:
    request = new_request(
        price=2**256 - 1,  # the largest uint256: beyond INTEGER, BIGINT and float precision
        caller="principal:alice@example.com",
        created_at=1_700_000_000.123456,
        expires_at=1_700_000_300.654321,
        max_timeout_seconds=300,
        description="naïve ünïcode — and 'quotes'",
        payload='{"x402Version": 2}',
        tx_hash="0xabc",
        payer=PAYER,
        paid_at=1.5,
        lease_until=2.5,
        consumed_at=3.5,
        result="{}",
    )
    await ledger.issue(request)
    stored = await ledger.get(request.id)
    assert stored == request
    assert stored is not None
    assert type(stored.price) is int
    assert stored.state is State.ISSUED


async def test_get_of_an_unknown_id_is_none(ledger: Ledger) -> None:
    assert await ledger.get("pr_unknown") is None


async def test_a_request_without_caller_round_trips(ledger: Ledger) -> None:
    request = new_request(caller=None, price=0)
    await ledger.issue(request)
    assert await ledger.get(request.id) == request


async def test_issuing_an_id_twice_is_refused_and_keeps_the_first(ledger: Ledger) -> None:
    request = new_request()
    await ledger.issue(request)
    with pytest.raises(LedgerError, match="already exists"):
        await ledger.issue(replace(request, tool="other", price=1))
    assert await ledger.get(request.id) == request


@pytest.mark.parametrize("price", [-1, 2**256, 0.05, True, "50000"])
async def test_issue_refuses_a_price_that_is_not_atomic_units(ledger: Ledger, price: object) -> None:
    request = new_request(price=price)
    with pytest.raises(LedgerError, match="price"):
        await ledger.issue(request)
    assert await ledger.get(request.id) is None


async def test_issue_refuses_a_request_past_issued(ledger: Ledger) -> None:
    request = new_request(state=State.PAID)
    with pytest.raises(LedgerError, match="new requests only"):
        await ledger.issue(request)
    assert await ledger.get(request.id) is None


# -- transitions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("source", list(State), ids=str)
@pytest.mark.parametrize("event", list(Event), ids=str)
async def test_every_event_from_every_state_follows_the_table(
    ledger: Ledger, event: Event, source: State
) -> None:
    request = await issued_in(ledger, source)
    trail = await ledger.audit_trail(request.id)
    target = target_of(event, source)
    if target is None:
        with pytest.raises(StateConflict) as refused:
            await ledger.transition(request.id, event, now=NOW, **arguments(event, request.id))
        assert (refused.value.request_id, refused.value.event, refused.value.current) == (
            request.id,
            event.value,
            source.value,
        )
        assert await ledger.get(request.id) == request
        assert await ledger.audit_trail(request.id) == trail
    else:
        moved = await ledger.transition(request.id, event, now=NOW, **arguments(event, request.id))
        assert moved.state is target
        assert await ledger.get(request.id) == moved
        assert [line[2] for line in await ledger.audit_trail(request.id)] == [line[2] for line in trail] + [
            event.value
        ]


@pytest.mark.parametrize("event", list(Event), ids=str)
async def test_a_transition_of_an_unknown_request_conflicts_with_nothing(
    ledger: Ledger, event: Event
) -> None:
    with pytest.raises(StateConflict) as refused:
        await ledger.transition("pr_missing", event, now=NOW, **arguments(event, "pr_missing"))
    assert refused.value.current is None
    assert await ledger.settlements() == []
    assert await ledger.audit_trail() == []


async def test_each_transition_records_what_it_carries(ledger: Ledger) -> None:
    request = new_request()
    await ledger.issue(request)

    settling = await ledger.transition(
        request.id, Event.BEGIN_SETTLEMENT, now=NOW + 1, payload='{"sig": "0x1"}'
    )
    # When it began settling is on the row, for reconciliation (and gone once it settled).
    assert settling == replace(
        request, state=State.SETTLING, payload='{"sig": "0x1"}', settling_since=NOW + 1
    )

    record = settlement_for(request.id, at=NOW + 2)
    paid = await ledger.transition(request.id, Event.SETTLED, now=NOW + 3, settlement=record)
    assert paid == replace(
        settling, state=State.PAID, tx_hash=record.tx_hash, payer=PAYER, paid_at=NOW + 2, settling_since=None
    )
    assert await ledger.settlements(request.id) == [record]

    claimed = await ledger.transition(request.id, Event.CLAIM, now=NOW + 4, lease_until=NOW + 34)
    assert claimed == replace(paid, state=State.REDEEMING, lease_until=NOW + 34)

    released = await ledger.transition(request.id, Event.RELEASE, now=NOW + 5)
    assert released == replace(paid, state=State.PAID, lease_until=None)

    await ledger.transition(request.id, Event.CLAIM, now=NOW + 6, lease_until=NOW + 36)
    consumed = await ledger.transition(request.id, Event.CONSUME, now=NOW + 7, result='{"ok": true}')
    assert consumed == replace(paid, state=State.CONSUMED, consumed_at=NOW + 7, result='{"ok": true}')
    assert await ledger.get(request.id) == consumed


async def test_a_failed_settlement_returns_the_request_to_issued_keeping_the_payload(ledger: Ledger) -> None:
    request = await issued_in(ledger, State.SETTLING)
    failed = await ledger.transition(request.id, Event.SETTLEMENT_FAILED, now=NOW)
    assert failed == replace(request, state=State.ISSUED, settling_since=None)
    again = await ledger.transition(request.id, Event.BEGIN_SETTLEMENT, now=NOW, payload="second")
    assert again.state is State.SETTLING
    assert again.payload == "second"
    assert await ledger.settlements(request.id) == []


@pytest.mark.parametrize(
    ("event", "given", "complaint"),
    [
        (Event.SETTLED, {}, "settlement record"),
        (Event.CLAIM, {}, "lease_until"),
        (Event.CLAIM, {"lease_until": NOW}, "lease_until"),
        (Event.CLAIM, {"lease_until": NOW + 1, "payload": "x"}, "takes no payload"),
        (Event.RELEASE, {"result": "x"}, "takes no result"),
        (
            Event.SETTLED,
            {"settlement": SettlementRecord("0x1", PAYER, -5, USDC, "eip155:84532", NOW)},
            "amount",
        ),
    ],
)
async def test_a_transition_with_wrong_arguments_changes_nothing(
    ledger: Ledger, event: Event, given: dict[str, Any], complaint: str
) -> None:
    source = next(state for state in State if target_of(event, state) is not None)
    request = await issued_in(ledger, source)
    settlements = await ledger.settlements()
    with pytest.raises(LedgerError, match=complaint) as refused:
        await ledger.transition(request.id, event, now=NOW, **given)
    assert not isinstance(refused.value, StateConflict)
    assert await ledger.get(request.id) == request
    assert await ledger.settlements() == settlements


# -- expiry ----------------------------------------------------------------------------------------


async def test_settlement_cannot_begin_at_or_after_expiry_and_the_request_expires(ledger: Ledger) -> None:
    request = new_request(expires_at=NOW + 60)
    await ledger.issue(request)
    with pytest.raises(StateConflict) as refused:
        await ledger.transition(request.id, Event.BEGIN_SETTLEMENT, now=NOW + 60, payload="late")
    assert refused.value.current == State.EXPIRED.value
    assert await ledger.get(request.id) == replace(request, state=State.EXPIRED)
    assert [line[2] for line in await ledger.audit_trail(request.id)] == ["issue", "expire"]

    with pytest.raises(StateConflict) as again:
        await ledger.transition(request.id, Event.BEGIN_SETTLEMENT, now=NOW + 61, payload="later")
    assert again.value.current == State.EXPIRED.value
    assert len(await ledger.audit_trail(request.id)) == 2


async def test_settlement_begins_until_the_last_moment_before_expiry(ledger: Ledger) -> None:
    request = new_request(expires_at=NOW + 60)
    await ledger.issue(request)
    settling = await ledger.transition(
        request.id, Event.BEGIN_SETTLEMENT, now=NOW + 59.999, payload="in time"
    )
    assert settling.state is State.SETTLING


async def test_expiry_does_not_stop_a_paid_request_being_redeemed(ledger: Ledger) -> None:
    request = await issued_in(ledger, State.PAID, expires_at=NOW + 1)
    claimed = await ledger.transition(request.id, Event.CLAIM, now=NOW + 100, lease_until=NOW + 130)
    assert claimed.state is State.REDEEMING


async def test_expire_overdue_expires_only_issued_requests_past_their_expiry(ledger: Ledger) -> None:
    due = [await issued_in(ledger, State.ISSUED, expires_at=NOW + 10) for _ in range(2)]
    not_yet = await issued_in(ledger, State.ISSUED, expires_at=NOW + 11)
    paid = await issued_in(ledger, State.PAID, expires_at=NOW + 10)
    expire_overdue = ledger.expire_overdue  # type: ignore[attr-defined]
    assert sorted(await expire_overdue(now=NOW + 10)) == sorted(r.id for r in due)
    assert [(await ledger.get(r.id)).state for r in due] == [State.EXPIRED] * 2  # type: ignore[union-attr]
    assert (await ledger.get(not_yet.id)) == not_yet
    assert (await ledger.get(paid.id)) == paid
    assert await expire_overdue(now=NOW + 10) == []


# -- leases and redemption -------------------------------------------------------------------------


async def test_a_lapsed_lease_can_be_claimed_again_and_only_once_lapsed(ledger: Ledger) -> None:
    request = await issued_in(ledger, State.REDEEMING)  # leased until NOW + LEASE
    for now in (NOW + 1, NOW + LEASE):  # within the lease, and at its last instant
        with pytest.raises(StateConflict) as refused:
            await ledger.transition(request.id, Event.CLAIM, now=now, lease_until=now + LEASE)
        assert refused.value.current == State.REDEEMING.value
        assert await ledger.find_redeemable(tool=request.tool, caller="session:7f3a", now=now) is None
        # The SQL and the one definition in core/states agree, at the boundary too.
        assert not claimable(request.state, request.lease_until, now)

    later = NOW + LEASE + 0.5
    assert claimable(request.state, request.lease_until, later)
    assert await ledger.find_redeemable(tool=request.tool, caller="session:7f3a", now=later) == request
    reclaimed = await ledger.transition(request.id, Event.CLAIM, now=later, lease_until=later + LEASE)
    assert reclaimed == replace(request, lease_until=later + LEASE)
    assert await ledger.find_redeemable(tool=request.tool, caller="session:7f3a", now=later) is None


async def test_find_redeemable_returns_the_oldest_paid_request_of_that_caller_and_tool(
    ledger: Ledger,
) -> None:
    # Issued out of order, so the answer cannot come from insertion order.
    middle = await issued_in(ledger, State.PAID, created_at=NOW + 2)
    oldest = await issued_in(ledger, State.PAID, created_at=NOW + 1)
    newest = await issued_in(ledger, State.PAID, created_at=NOW + 3)
    # Older, but not redeemable by this caller for this tool.
    for state, changes in [
        (State.PAID, {"caller": "session:other"}),
        (State.PAID, {"caller": None}),
        (State.PAID, {"tool": "other_tool"}),
        (State.ISSUED, {}),
        (State.SETTLING, {}),
        (State.REDEEMING, {}),
        (State.CONSUMED, {}),
        (State.EXPIRED, {}),
    ]:
        await issued_in(ledger, state, created_at=NOW, **changes)

    async def found() -> PaymentRequest | None:
        return await ledger.find_redeemable(tool="research_query", caller="session:7f3a", now=NOW + 5)

    assert await found() == oldest
    await ledger.transition(oldest.id, Event.CLAIM, now=NOW + 5, lease_until=NOW + 60)
    assert await found() == middle
    await ledger.transition(middle.id, Event.CLAIM, now=NOW + 5, lease_until=NOW + 60)
    assert await found() == newest
    await ledger.transition(newest.id, Event.CLAIM, now=NOW + 5, lease_until=NOW + 60)
    assert await found() is None
    other = await ledger.find_redeemable(tool="research_query", caller="session:other", now=NOW + 5)
    assert other is not None
    assert other.caller == "session:other"


# -- settlements and audit -------------------------------------------------------------------------


async def test_settlements_are_kept_exactly_and_listed_oldest_first(ledger: Ledger) -> None:
    first, second = [await issued_in(ledger, State.SETTLING) for _ in range(2)]
    late = settlement_for(second.id, amount=2**200 + 1, at=NOW + 20)
    early = settlement_for(first.id, amount=10**77, at=NOW + 10)
    await ledger.transition(second.id, Event.SETTLED, now=NOW, settlement=late)
    await ledger.transition(first.id, Event.SETTLED, now=NOW, settlement=early)
    assert await ledger.settlements() == [early, late]
    assert await ledger.settlements(second.id) == [late]
    assert await ledger.settlements("pr_missing") == []


async def test_one_transaction_cannot_pay_for_two_requests(ledger: Ledger) -> None:
    first, second = [await issued_in(ledger, State.SETTLING) for _ in range(2)]
    record = settlement_for(first.id)
    await ledger.transition(first.id, Event.SETTLED, now=NOW, settlement=record)
    with pytest.raises(LedgerError, match="already recorded") as refused:
        await ledger.transition(second.id, Event.SETTLED, now=NOW, settlement=record)
    assert not isinstance(refused.value, StateConflict)
    assert await ledger.get(second.id) == second  # still settling, nothing half-written
    assert await ledger.settlements() == [record]
    assert [line[2] for line in await ledger.audit_trail(second.id)] == ["issue", "begin_settlement"]


async def test_the_audit_trail_keeps_explicit_lines_and_every_transition_in_order(ledger: Ledger) -> None:
    await ledger.audit(None, "refused", "malformed payment header", now=NOW)
    request = await issued_in(ledger, State.CONSUMED)
    await ledger.audit(request.id, "replayed", "same authorization again", now=NOW + 1)
    await ledger.audit("pr_unknown", "unknown", "no such request", now=NOW + 2)

    trail = await ledger.audit_trail(request.id)
    assert [(at, rid, event) for at, rid, event, _ in trail] == [
        (NOW, request.id, "issue"),
        (NOW, request.id, "begin_settlement"),
        (NOW, request.id, "settled"),
        (NOW, request.id, "claim"),
        (NOW, request.id, "consume"),
        (NOW + 1, request.id, "replayed"),
    ]
    assert request.tx_hash is not None
    assert request.tx_hash in trail[2][3]
    everything = await ledger.audit_trail()
    assert everything[0] == (NOW, None, "refused", "malformed payment header")
    assert everything[1:-1] == trail
    assert everything[-1] == (NOW + 2, "pr_unknown", "unknown", "no such request")


# -- migrations and lifecycle ----------------------------------------------------------------------


async def applied_versions(store: Store) -> list[int]:
    return [
        version for (version,) in await store.query("SELECT version FROM schema_migrations ORDER BY version")
    ]


async def test_migrations_apply_once_however_often_the_ledger_opens(store: Store) -> None:
    first = store.ledger()
    await first.open()
    await first.open()  # a second open of the same ledger is a no-op
    request = await issued_in(first, State.PAID)
    await first.close()
    versions = await applied_versions(store)
    # Every migration this x402-mcp knows, each once, in order.
    assert versions == sorted(migration.version for migration in ledger_migrations(SQLITE))

    again = store.ledger()
    await again.open()
    assert await again.get(request.id) == request
    await again.close()
    assert await applied_versions(store) == versions


async def test_ledgers_opening_a_fresh_store_at_once_migrate_it_once(store: Store) -> None:
    ledgers = [store.ledger() for _ in range(4)]
    with anyio.fail_after(60):
        async with anyio.create_task_group() as group:
            for ledger in ledgers:
                group.start_soon(ledger.open)
    try:
        for ledger in ledgers:
            await issued_in(ledger, State.ISSUED)
        assert len(await ledgers[0].audit_trail()) == len(ledgers)
    finally:
        for ledger in ledgers:
            await ledger.close()
    versions = await applied_versions(store)
    assert versions == sorted(set(versions))
    assert versions[0] == 1


async def test_a_store_migrated_by_a_newer_version_is_refused(store: Store) -> None:
    ledger = store.ledger()
    await ledger.open()
    await ledger.close()
    await store.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)")
    newer = store.ledger()
    with pytest.raises(LedgerError, match="newer than this x402-mcp knows"):
        await newer.open()
    with pytest.raises(LedgerError, match="not open"):
        await newer.get("pr_x")


async def test_a_ledger_is_unusable_before_open_and_after_close(store: Store) -> None:
    ledger = store.ledger()
    with pytest.raises(LedgerError, match="not open"):
        await ledger.issue(new_request())
    await ledger.open()
    request = await issued_in(ledger, State.ISSUED)
    await ledger.close()
    await ledger.close()  # idempotent
    with pytest.raises(LedgerError, match="not open"):
        await ledger.get(request.id)


# -- concurrency -----------------------------------------------------------------------------------


async def test_of_64_concurrent_claims_exactly_one_wins(ledger: Ledger) -> None:
    request = await issued_in(ledger, State.PAID)
    leases = [NOW + 100 + i for i in range(64)]
    won, lost = await race(
        [partial(ledger.transition, request.id, Event.CLAIM, now=NOW, lease_until=lease) for lease in leases]
    )
    assert len(won) == 1
    assert len(lost) == 63
    assert {conflict.current for conflict in lost} == {State.REDEEMING.value}
    assert await ledger.get(request.id) == won[0]
    assert won[0].lease_until in leases
    assert [line[2] for line in await ledger.audit_trail(request.id)].count("claim") == 1


async def test_of_64_concurrent_settlement_starts_exactly_one_wins(ledger: Ledger) -> None:
    request = await issued_in(ledger, State.ISSUED)
    won, lost = await race(
        [
            partial(ledger.transition, request.id, Event.BEGIN_SETTLEMENT, now=NOW, payload=f"payload {i}")
            for i in range(64)
        ]
    )
    assert len(won) == 1
    assert len(lost) == 63
    assert {conflict.current for conflict in lost} == {State.SETTLING.value}
    stored = await ledger.get(request.id)
    assert stored == won[0]
    assert stored.payload is not None
    assert stored.payload.startswith("payload ")


async def test_two_ledger_instances_on_one_store_let_exactly_one_claim_win(store: Store) -> None:
    first, second = store.ledger(), store.ledger()
    await first.open()
    await second.open()
    try:
        to_settle = await issued_in(first, State.ISSUED)
        to_claim = await issued_in(first, State.PAID)
        for event, request, extra in [
            (Event.BEGIN_SETTLEMENT, to_settle, {"payload": "p"}),
            (Event.CLAIM, to_claim, {"lease_until": NOW + LEASE}),
        ]:
            won, lost = await race(
                [
                    partial(ledger.transition, request.id, event, now=NOW, **extra)
                    for ledger in [first, second] * 32
                ]
            )
            assert len(won) == 1
            assert len(lost) == 63
            assert await second.get(request.id) == won[0] == await first.get(request.id)
    finally:
        await first.close()
        await second.close()

"""`Ledger.claim` (a redemption's claim in one write) and `settled` with a claim, on every backend."""

from __future__ import annotations

import secrets
from dataclasses import replace

import anyio
import pytest

from x402_mcp.core.states import Event, State, StateConflict
from x402_mcp.errors import LedgerError
from x402_mcp.ledger import Claim, Ledger, SettlementRecord

from .conftest import Store
from .test_contract import LEASE, NOW, PAYER, USDC, issued_in, settlement_for

pytestmark = pytest.mark.anyio


async def claim(
    ledger: Ledger,
    request_id: str,
    *,
    tool: str = "research_query",
    price: int = 50_000,
    now: float = NOW,
    claim_id: str = "c1",
) -> Claim | None:
    return await ledger.claim(
        request_id, tool=tool, price=price, lease_until=now + LEASE, claim_id=claim_id, now=now
    )


async def test_a_paid_request_is_claimed_for_its_tool_with_the_network_it_settled_on(ledger: Ledger) -> None:
    paid = await issued_in(ledger, State.PAID)
    [settlement] = await ledger.settlements(paid.id)

    taken = await claim(ledger, paid.id, price=paid.price - 1)

    assert taken is not None
    assert taken.request == replace(paid, state=State.REDEEMING, lease_until=NOW + LEASE, claim_id="c1")
    assert taken.network == settlement.network
    assert await ledger.get(paid.id) == taken.request
    assert [line[2] for line in await ledger.audit_trail(paid.id)][-1] == "claim"
    # The claim it holds is the one `consume` is fenced by.
    consumed = await ledger.transition(paid.id, Event.CONSUME, now=NOW + 1, result="{}", claim_id="c1")
    assert consumed.state is State.CONSUMED


async def test_the_network_is_the_latest_settlements(ledger: Ledger) -> None:
    # A request paid on another network than its own (Solana) names that one in its receipt.
    settling = await issued_in(ledger, State.SETTLING)
    record = SettlementRecord("5" * 64, PAYER, 50_000, USDC, "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", NOW)
    await ledger.transition(settling.id, Event.SETTLED, now=NOW, settlement=record)

    taken = await claim(ledger, settling.id)

    assert taken is not None and taken.network == record.network


@pytest.mark.parametrize(
    ("state", "tool", "price"),
    [
        (State.PAID, "another_tool", 50_000),
        (State.PAID, "research_query", 50_001),
        (State.ISSUED, "research_query", 50_000),
        (State.SETTLING, "research_query", 50_000),
        (State.REDEEMING, "research_query", 50_000),  # held by a live claim
        (State.CONSUMED, "research_query", 50_000),
        (State.EXPIRED, "research_query", 50_000),
    ],
)
async def test_what_cannot_be_claimed_so_is_not_and_nothing_is_written(
    ledger: Ledger, state: State, tool: str, price: int
) -> None:
    request = await issued_in(ledger, state)
    trail = await ledger.audit_trail(request.id)

    assert await claim(ledger, request.id, tool=tool, price=price, now=NOW + 1) is None

    assert await ledger.get(request.id) == request
    assert await ledger.audit_trail(request.id) == trail


@pytest.mark.parametrize("request_id", ["pr_missing", "", "x" * 101, "pr_\x00nul"])
async def test_an_unknown_or_impossible_id_claims_nothing(ledger: Ledger, request_id: str) -> None:
    assert await claim(ledger, request_id) is None


async def test_a_lapsed_claim_is_taken_over_and_fences_out_the_old_run(ledger: Ledger) -> None:
    request = await issued_in(ledger, State.PAID)
    first = await claim(ledger, request.id, claim_id="first")
    assert first is not None
    assert await claim(ledger, request.id, claim_id="second", now=NOW + LEASE) is None  # not lapsed yet

    later = NOW + LEASE + 0.5
    second = await claim(ledger, request.id, claim_id="second", now=later)

    assert second is not None and second.request.claim_id == "second"
    with pytest.raises(StateConflict):
        await ledger.transition(request.id, Event.CONSUME, now=later, result="{}", claim_id="first")


async def test_of_64_concurrent_claims_exactly_one_wins(store: Store) -> None:
    # Two ledgers on one store, as two processes or replicas would have.
    first, second = store.ledger(), store.ledger()
    await first.open()
    await second.open()
    try:
        request = await issued_in(first, State.PAID)
        won: list[Claim] = []

        async def attempt(ledger: Ledger, i: int) -> None:
            taken = await claim(ledger, request.id, claim_id=f"c{i}")
            if taken is not None:
                won.append(taken)

        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                for i in range(64):
                    group.start_soon(attempt, (first, second)[i % 2], i)
        assert len(won) == 1
        assert await first.get(request.id) == won[0].request
        assert [line[2] for line in await first.audit_trail(request.id)].count("claim") == 1
    finally:
        await first.close()
        await second.close()


async def test_settled_with_a_claim_goes_straight_to_redeeming_under_it(ledger: Ledger) -> None:
    settling = await issued_in(ledger, State.SETTLING)
    record = settlement_for(settling.id)

    moved = await ledger.transition(
        settling.id, Event.SETTLED, now=NOW, settlement=record, lease_until=NOW + LEASE, claim_id="run"
    )

    assert moved.state is State.REDEEMING
    assert (moved.claim_id, moved.lease_until, moved.tx_hash) == ("run", NOW + LEASE, record.tx_hash)
    assert await ledger.settlements(settling.id) == [record]
    # Nobody else can take it while that run holds it ...
    assert await claim(ledger, settling.id, now=NOW + 1) is None
    assert await ledger.find_redeemable(tool=moved.tool, caller="session:7f3a", now=NOW + 1) is None
    # ... and a failed run hands it back, paid.
    released = await ledger.transition(settling.id, Event.RELEASE, now=NOW + 2, claim_id="run")
    assert released.state is State.PAID
    [*_, line] = await ledger.audit_trail(settling.id)
    assert line[2] == "release"


@pytest.mark.parametrize(
    "extra",
    [{"claim_id": "run"}, {"lease_until": NOW + LEASE}, {"lease_until": NOW - 1, "claim_id": "run"}],
)
async def test_settled_with_half_a_claim_is_refused_and_changes_nothing(
    ledger: Ledger, extra: dict[str, object]
) -> None:
    settling = await issued_in(ledger, State.SETTLING)
    with pytest.raises(LedgerError):
        await ledger.transition(
            settling.id,
            Event.SETTLED,
            now=NOW,
            settlement=settlement_for(settling.id),
            **extra,  # type: ignore[arg-type]
        )
    assert await ledger.get(settling.id) == settling
    assert await ledger.settlements(settling.id) == []


async def test_claims_by_different_runs_use_fresh_ids(ledger: Ledger) -> None:
    # The claim id is the caller's fencing token: the ledger stores exactly what it was given.
    request = await issued_in(ledger, State.PAID)
    token = secrets.token_hex(16)
    taken = await ledger.claim(
        request.id, tool=request.tool, price=request.price, lease_until=NOW + 5, claim_id=token, now=NOW
    )
    assert taken is not None and (await ledger.get(request.id)) == replace(
        request, state=State.REDEEMING, lease_until=NOW + 5, claim_id=token
    )


@pytest.mark.parametrize(
    ("quoted", "asked", "taken"),
    [
        (100_000, 99_999, True),  # a shorter price is a smaller one, though "9" sorts after "1"
        (99_999, 100_000, False),
        (2**255, 2**64 + 1, True),  # past SQLite's INTEGER, as tokens of 18 decimals are
        (2**64, 2**64 + 1, False),
        (10**30, 10**30, True),
    ],
)
async def test_the_price_guard_compares_amounts_as_numbers(
    ledger: Ledger, quoted: int, asked: int, taken: bool
) -> None:
    request = await issued_in(ledger, State.PAID, price=quoted)

    assert (await claim(ledger, request.id, price=asked) is not None) is taken


# -- claim_redeemable: a caller's plain retry in one write --------------------------------------------


async def claim_redeemable(
    ledger: Ledger,
    *,
    caller: str = "session:7f3a",
    tool: str = "research_query",
    price: int = 50_000,
    now: float = NOW + 5,
    claim_id: str = "c1",
) -> Claim | None:
    return await ledger.claim_redeemable(
        tool=tool, caller=caller, price=price, lease_until=now + LEASE, claim_id=claim_id, now=now
    )


async def test_claim_redeemable_spends_the_oldest_paid_request_of_that_caller_and_tool(
    ledger: Ledger,
) -> None:
    # Issued out of order, so the answer cannot come from insertion order.
    middle = await issued_in(ledger, State.PAID, created_at=NOW + 2)
    oldest = await issued_in(ledger, State.PAID, created_at=NOW + 1)
    newest = await issued_in(ledger, State.PAID, created_at=NOW + 3)
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
    [settlement] = await ledger.settlements(oldest.id)

    spent = [await claim_redeemable(ledger, claim_id=f"c{i}") for i in range(4)]

    assert spent[3] is None
    assert [taken.request.id for taken in spent[:3] if taken is not None] == [oldest.id, middle.id, newest.id]
    first = spent[0]
    assert first is not None and first.network == settlement.network
    assert first.request == replace(oldest, state=State.REDEEMING, lease_until=NOW + 5 + LEASE, claim_id="c0")
    assert await ledger.get(oldest.id) == first.request
    assert [line[2] for line in await ledger.audit_trail(oldest.id)][-1] == "claim"
    other = await claim_redeemable(ledger, caller="session:other")
    assert other is not None and other.request.caller == "session:other"


async def test_claim_redeemable_leaves_a_request_that_does_not_cover_the_call_untouched(
    ledger: Ledger,
) -> None:
    cheap = await issued_in(ledger, State.PAID, created_at=NOW + 1, price=10_000)
    # A newer one that would cover it is not spent in the cheap one's place: the call is quoted.
    dear = await issued_in(ledger, State.PAID, created_at=NOW + 2, price=90_000)
    trails = [await ledger.audit_trail(cheap.id), await ledger.audit_trail(dear.id)]

    assert await claim_redeemable(ledger, price=50_000) is None
    assert await claim_redeemable(ledger, tool="other_tool", price=1) is None

    assert [await ledger.get(cheap.id), await ledger.get(dear.id)] == [cheap, dear]
    assert [await ledger.audit_trail(cheap.id), await ledger.audit_trail(dear.id)] == trails


async def test_claim_redeemable_takes_over_a_lapsed_claim_only(ledger: Ledger) -> None:
    request = await issued_in(ledger, State.PAID)
    first = await claim_redeemable(ledger, claim_id="first", now=NOW)
    assert first is not None
    assert await claim_redeemable(ledger, claim_id="second", now=NOW + LEASE) is None

    second = await claim_redeemable(ledger, claim_id="second", now=NOW + LEASE + 0.5)

    assert second is not None and second.request.id == request.id and second.request.claim_id == "second"
    with pytest.raises(StateConflict):
        await ledger.transition(request.id, Event.CONSUME, now=NOW + LEASE + 1, result="{}", claim_id="first")


async def test_of_64_concurrent_plain_retries_each_paid_request_is_spent_once(store: Store) -> None:
    first, second = store.ledger(), store.ledger()
    await first.open()
    await second.open()
    try:
        paid = [await issued_in(first, State.PAID, created_at=NOW + i) for i in range(3)]
        won: list[Claim] = []

        async def attempt(ledger: Ledger, i: int) -> None:
            taken = await claim_redeemable(ledger, claim_id=f"c{i}")
            if taken is not None:
                won.append(taken)

        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                for i in range(64):
                    group.start_soon(attempt, (first, second)[i % 2], i)
        assert sorted(taken.request.id for taken in won) == sorted(request.id for request in paid)
        for taken in won:
            assert await first.get(taken.request.id) == taken.request
            assert [line[2] for line in await first.audit_trail(taken.request.id)].count("claim") == 1
    finally:
        await first.close()
        await second.close()

"""`Ledger.claim` (a redemption's claim in one write) and `settled` with a claim, on every backend."""

from __future__ import annotations

import secrets
from dataclasses import replace

import anyio
import pytest

from x402_mcp.errors import LedgerError, StateConflict
from x402_mcp.ledger import Claim, Ledger, SettlementRecord
from x402_mcp.lifecycle import Event, State

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

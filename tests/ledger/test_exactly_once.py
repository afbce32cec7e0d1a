"""Exactly-once and bounded state at the ledger, on both backends: payment claims, lease
renewal, atomic caps on open requests, bounded audit lines and results, impossible ids."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import anyio
import pytest

from x402_mcp.core.states import Event, State, StateConflict
from x402_mcp.errors import LedgerError, TooManyOpenRequests
from x402_mcp.ledger import Ledger
from x402_mcp.ledger.base import PaymentKey

from .conftest import Store
from .test_contract import LEASE, NOW, PAYER, issued_in, new_request, settlement_for

pytestmark = pytest.mark.anyio

KEY = PaymentKey("eip155:84532", PAYER.lower(), "0x" + "ab" * 32)


# -- one payment, one request ----------------------------------------------------------------------


async def test_a_payment_is_bound_to_the_first_request_that_claims_it(ledger: Ledger) -> None:
    first, second = [await issued_in(ledger, State.ISSUED) for _ in range(2)]
    assert await ledger.claim_payment(KEY, first.id, now=NOW) == first.id
    assert await ledger.claim_payment(KEY, first.id, now=NOW + 1) == first.id  # idempotent
    assert await ledger.claim_payment(KEY, second.id, now=NOW + 2) == first.id
    # Another nonce of the same payer, or the same nonce on another network, is another payment.
    other_nonce = PaymentKey(KEY.network, KEY.payer, "0x" + "cd" * 32)
    other_network = PaymentKey("eip155:8453", KEY.payer, KEY.nonce)
    assert await ledger.claim_payment(other_nonce, second.id, now=NOW) == second.id
    assert await ledger.claim_payment(other_network, second.id, now=NOW) == second.id


async def test_of_many_requests_claiming_one_payment_at_once_exactly_one_owns_it(store: Store) -> None:
    ledgers = [store.ledger(), store.ledger()]  # two processes (replicas) sharing the store
    for ledger in ledgers:
        await ledger.open()
    try:
        requests = [await issued_in(ledgers[0], State.ISSUED) for _ in range(24)]
        owners: list[str] = []

        async def claim(index: int) -> None:
            ledger = ledgers[index % 2]
            owners.append(await ledger.claim_payment(KEY, requests[index].id, now=NOW))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                for index in range(len(requests)):
                    group.start_soon(claim, index)
        assert len(owners) == len(requests)
        assert len(set(owners)) == 1
        assert owners[0] in {request.id for request in requests}
    finally:
        for ledger in ledgers:
            await ledger.close()


async def test_a_claim_goes_only_with_its_request_when_that_is_purged(ledger: Ledger) -> None:
    expired = await issued_in(ledger, State.EXPIRED, expires_at=NOW - 10)
    paid = await issued_in(ledger, State.PAID)
    other_key = PaymentKey(KEY.network, KEY.payer, "0x" + "ef" * 32)
    await ledger.claim_payment(KEY, expired.id, now=NOW)
    await ledger.claim_payment(other_key, paid.id, now=NOW)
    later = await issued_in(ledger, State.ISSUED)

    assert await ledger.purge_expired(before=NOW) == 1
    assert await ledger.claim_payment(KEY, later.id, now=NOW) == later.id  # its request is gone
    assert await ledger.claim_payment(other_key, later.id, now=NOW) == paid.id  # kept with the paid one


# -- a long run keeps its claim --------------------------------------------------------------------


async def test_a_renewed_lease_keeps_a_long_run_from_being_taken_over(ledger: Ledger) -> None:
    request = await issued_in(ledger, State.PAID)
    await ledger.transition(request.id, Event.CLAIM, now=NOW, lease_until=NOW + LEASE, claim_id="run-a")
    beat = NOW + LEASE - 1
    assert await ledger.renew_lease(request.id, "run-a", lease_until=beat + LEASE, now=beat)
    renewed = await ledger.get(request.id)
    assert renewed is not None and renewed.lease_until == beat + LEASE

    # Past the first lease, but not the renewed one: a retry cannot take the run over.
    retry_at = NOW + LEASE + 1
    with pytest.raises(StateConflict) as conflict:
        await ledger.transition(
            request.id, Event.CLAIM, now=retry_at, lease_until=retry_at + LEASE, claim_id="run-b"
        )
    assert conflict.value.current == State.REDEEMING.value
    # Only the holder renews; nothing changes for a stranger's claim id.
    assert not await ledger.renew_lease(request.id, "run-b", lease_until=retry_at + 99, now=retry_at)
    assert (await ledger.get(request.id)) == renewed


async def test_a_lease_is_not_renewed_once_the_claim_is_gone(ledger: Ledger) -> None:
    request = await issued_in(ledger, State.PAID)
    await ledger.transition(request.id, Event.CLAIM, now=NOW, lease_until=NOW + LEASE, claim_id="run-a")
    consumed = await ledger.transition(request.id, Event.CONSUME, now=NOW, result="{}", claim_id="run-a")
    assert not await ledger.renew_lease(request.id, "run-a", lease_until=NOW + LEASE, now=NOW)
    assert await ledger.get(request.id) == consumed
    with pytest.raises(LedgerError, match="later than now"):
        await ledger.renew_lease(request.id, "run-a", lease_until=NOW - 1, now=NOW)


# -- the cap on open requests is exact -------------------------------------------------------------


async def race_issues(ledgers: list[Ledger], caller: str | None, count: int, cap: int) -> tuple[int, int]:
    """Issue `count` requests for `caller` at once under `cap`: how many were stored, refused."""
    stored: list[str] = []
    refused: list[TooManyOpenRequests] = []

    async def issue(index: int) -> None:
        request = new_request(caller=caller)
        try:
            await ledgers[index % len(ledgers)].issue(request, max_open=cap)
            stored.append(request.id)
        except TooManyOpenRequests as error:
            refused.append(error)

    with anyio.fail_after(120):
        async with anyio.create_task_group() as group:
            for index in range(count):
                group.start_soon(issue, index)
    return len(stored), len(refused)


async def test_concurrent_issues_for_one_caller_stop_exactly_at_the_cap(store: Store) -> None:
    ledgers = [store.ledger(), store.ledger()]
    for ledger in ledgers:
        await ledger.open()
    try:
        assert await race_issues(ledgers, "session:flood", 50, 20) == (20, 30)
        assert await ledgers[0].count_open(caller="session:flood", now=NOW) == 20
        # Another caller has a cap of its own.
        assert await race_issues(ledgers, "session:other", 5, 20) == (5, 0)
    finally:
        for ledger in ledgers:
            await ledger.close()


async def test_callers_without_an_identity_share_one_cap(ledger: Ledger) -> None:
    assert await race_issues([ledger], None, 30, 12) == (12, 18)
    assert await ledger.count_open(caller=None, now=NOW) == 12
    assert await ledger.count_open(caller="session:7f3a", now=NOW) == 0
    with pytest.raises(TooManyOpenRequests, match="without an identity") as refused:
        await ledger.issue(new_request(caller=None), max_open=12)
    assert "the limit is 12" in str(refused.value)


async def test_a_refusal_at_the_cap_writes_nothing(ledger: Ledger) -> None:
    await ledger.issue(new_request(caller="session:a"), max_open=1)
    before = (await ledger.requests(), await ledger.audit_trail())
    with pytest.raises(TooManyOpenRequests, match=r"hold 1 unpaid payment requests \(the limit is 1\)"):
        await ledger.issue(new_request(caller="session:a"), max_open=1)
    assert (await ledger.requests(), await ledger.audit_trail()) == before
    # Paid and expired requests are not open: they do not count.
    await issued_in(ledger, State.PAID, caller="session:b")
    await issued_in(ledger, State.EXPIRED, caller="session:b")
    await ledger.issue(new_request(caller="session:b"), max_open=1)


# -- bounded, honest records -----------------------------------------------------------------------


async def test_an_attacker_sized_audit_detail_is_kept_bounded_and_neutral(ledger: Ledger) -> None:
    await ledger.audit(None, "refused", "x" * 100_000, now=NOW)
    await ledger.audit(None, "refused", "bad id pr_\x00\u202e evil", now=NOW)
    huge_id = "pr_" + "y" * 100_000
    await ledger.audit(huge_id, "refused", "unknown request", now=NOW)
    [long, hidden, unknown] = await ledger.audit_trail()
    assert len(long[3]) < 600 and long[3].startswith("x" * 500)
    assert "99500 more characters" in long[3]
    assert hidden[3] == "bad id pr_\\u0000\\u202e evil"
    # An id that cannot name a request is not kept as one; a bounded echo goes in the detail.
    assert unknown[1] is None
    assert unknown[3].startswith("for id pr_yyy") and "more characters" in unknown[3]
    assert len(unknown[3]) < 600


async def test_audit_lines_of_no_request_are_purged_after_the_window(ledger: Ledger) -> None:
    request = await issued_in(ledger, State.PAID)
    await ledger.audit(None, "refused", "old refusal", now=NOW - 100)
    await ledger.audit(request.id, "note", "old, but the request's", now=NOW - 100)
    await ledger.audit(None, "refused", "recent refusal", now=NOW)
    assert await ledger.purge_unattached_audit(before=NOW - 50) == 1
    details = [detail for _, _, _, detail in await ledger.audit_trail()]
    assert "old refusal" not in details
    assert {"old, but the request's", "recent refusal"} <= set(details)
    assert await ledger.purge_unattached_audit(before=NOW - 50) == 0


async def consumed_with(ledger: Ledger, result: str, *, at: float = NOW) -> str:
    request = await issued_in(ledger, State.PAID)
    await ledger.transition(request.id, Event.CLAIM, now=at, lease_until=at + LEASE, claim_id="c")
    await ledger.transition(request.id, Event.CONSUME, now=at, result=result, claim_id="c")
    return request.id


async def test_a_result_too_large_to_keep_is_stored_as_its_size_and_digest(ledger: Ledger) -> None:
    small = json.dumps({"content": [{"type": "text", "text": "ok"}]})
    big = json.dumps({"content": [{"type": "text", "text": "é" * 70_000}]})
    small_id, big_id = await consumed_with(ledger, small), await consumed_with(ledger, big)
    kept = await ledger.get(small_id)
    assert kept is not None and kept.result == small
    noted = await ledger.get(big_id)
    assert noted is not None and noted.result is not None and noted.state is State.CONSUMED
    note: dict[str, Any] = json.loads(noted.result)
    encoded = big.encode()
    assert note["bytes"] == len(encoded) > 64 * 1024
    assert note["sha256"] == hashlib.sha256(encoded).hexdigest()
    assert len(noted.result) < 300


async def test_results_are_cleared_after_their_retention_and_the_rest_stays(ledger: Ledger) -> None:
    old = await consumed_with(ledger, '{"content": []}', at=NOW - 100)
    recent = await consumed_with(ledger, '{"content": []}', at=NOW)
    before = await ledger.get(old)
    trail = await ledger.audit_trail(old)
    assert await ledger.clear_results(before=NOW - 50) == 1
    cleared = await ledger.get(old)
    assert cleared is not None and before is not None
    assert cleared.result is None
    assert (cleared.state, cleared.tx_hash, cleared.consumed_at) == (
        State.CONSUMED,
        before.tx_hash,
        before.consumed_at,
    )
    assert len(await ledger.settlements(old)) == 1
    assert await ledger.audit_trail(old) == trail
    kept = await ledger.get(recent)
    assert kept is not None and kept.result == '{"content": []}'
    assert await ledger.clear_results(before=NOW - 50) == 0


# -- ids that cannot exist are never queried -------------------------------------------------------

IMPOSSIBLE_IDS: list[Any] = [
    "pr_\x00abc",
    "pr_\x1b[31m",
    "pr_line\nbreak",
    "pr_\ud800lone",  # a lone surrogate (json.loads makes them from "\\ud800")
    "",
    "pr_" + "a" * 98,  # 101 characters
    "pr_" + "a" * 100_000,
    12345,
    None,
]


@pytest.mark.parametrize("bad_id", IMPOSSIBLE_IDS, ids=repr)
async def test_an_id_that_cannot_exist_is_missing_on_every_read_and_write(
    ledger: Ledger, bad_id: Any
) -> None:
    await issued_in(ledger, State.CONSUMED)  # something there, so "nothing" is not just an empty store
    assert await ledger.get(bad_id) is None
    if bad_id is not None:  # None means "all of them" for these two
        assert await ledger.settlements(bad_id) == []
        assert await ledger.audit_trail(bad_id) == []
    for event, extra in (
        (Event.BEGIN_SETTLEMENT, {"payload": "{}"}),
        (Event.SETTLED, {"settlement": settlement_for("x")}),
        (Event.CLAIM, {"lease_until": NOW + LEASE, "claim_id": "c"}),
        (Event.EXPIRE, {}),
    ):
        with pytest.raises(StateConflict) as conflict:
            await ledger.transition(bad_id, event, now=NOW, **extra)
        assert conflict.value.current is None
        assert len(str(conflict.value)) < 200
    assert not await ledger.renew_lease(bad_id, "c", lease_until=NOW + LEASE, now=NOW)


async def test_an_id_of_the_longest_possible_length_is_stored_and_found(ledger: Ledger) -> None:
    request = replace(new_request(), id="pr_" + "b" * 97)  # 100 characters
    await ledger.issue(request)
    assert await ledger.get(request.id) == request
    with pytest.raises(LedgerError, match="cannot be stored"):
        await ledger.issue(replace(request, id=request.id + "b"))


async def test_a_settlers_lease_is_renewed_only_while_the_request_is_settling(ledger: Ledger) -> None:
    request = await issued_in(ledger, State.SETTLING)
    assert request.lease_until is None
    assert await ledger.renew_lease(request.id, None, lease_until=NOW + LEASE, now=NOW)
    renewed = await ledger.get(request.id)
    assert renewed is not None and (renewed.state, renewed.lease_until) == (State.SETTLING, NOW + LEASE)
    paid = await ledger.transition(request.id, Event.SETTLED, now=NOW, settlement=settlement_for(request.id))
    assert not await ledger.renew_lease(request.id, None, lease_until=NOW + 2 * LEASE, now=NOW)
    assert await ledger.get(request.id) == paid
    # A claimed run is renewed by its claim id only, never as a settlement.
    await ledger.transition(request.id, Event.CLAIM, now=NOW, lease_until=NOW + LEASE, claim_id="run-a")
    assert not await ledger.renew_lease(request.id, None, lease_until=NOW + 2 * LEASE, now=NOW)

"""Several server processes on one PostgreSQL ledger: one payment, one run, whichever replica."""

from __future__ import annotations

import anyio
import pytest
from eth_account.signers.local import LocalAccount
from mcp import Client

from x402_mcp.core.states import State
from x402_mcp.ledger import PostgresLedger

from ..chains import AnvilChain
from .cluster import Cluster
from .helpers import PRICE, call, challenge, pay_on_page, pay_with_meta, redeem, signed, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.anvil]

FUNDED = 10_000_000


async def test_issued_on_one_paid_on_another_redeemed_on_a_third_runs_once(
    replicas: Cluster, ledger: PostgresLedger, anvil: AnvilChain, payer: LocalAccount
) -> None:
    a, b, c = (replicas.add() for _ in range(3))
    replicas.start(a, b, c)

    request_id, quoted = await challenge(a, "q1")
    paid = await pay_on_page(b, request_id, signed(payer, quoted))
    assert paid.status_code == 200, paid.text
    assert (await ledger.get(request_id)).state is State.PAID  # type: ignore[union-attr]
    assert replicas.run_lines() == []  # paying runs nothing

    result = await redeem(c, request_id, "q1")
    assert not result.is_error, text_of(result)
    assert f"from {c.port}" in text_of(result)

    again = [await redeem(replica, request_id, "q1") for replica in (a, b, c)]
    assert all(r.is_error and "already" in text_of(r) for r in again), [text_of(r) for r in again]
    assert replicas.run_lines() == [f"start {c.port} q1", f"end {c.port} q1"]
    stored = await ledger.get(request_id)
    assert stored is not None and stored.state is State.CONSUMED
    [settlement] = await ledger.settlements(request_id)
    assert settlement.amount == PRICE
    assert anvil.balance_of(replicas.pay_to) == PRICE
    assert anvil.balance_of(payer.address) == FUNDED - PRICE


async def test_a_meta_payment_settled_by_one_replica_cannot_be_replayed_on_another(
    replicas: Cluster, ledger: PostgresLedger, anvil: AnvilChain, payer: LocalAccount
) -> None:
    a, b = replicas.add(), replicas.add()
    replicas.start(a, b)
    request_id, quoted = await challenge(a, "q2")
    payment = signed(payer, quoted)

    first = await pay_with_meta(b, "q2", payment)
    assert not first.is_error, text_of(first)
    replay = await pay_with_meta(a, "q2", payment)
    assert replay.is_error
    by_id = await redeem(a, request_id, "q2")
    assert by_id.is_error and "already" in text_of(by_id)

    assert [line for line in replicas.run_lines() if line.startswith("end")] == [f"end {b.port} q2"]
    assert anvil.balance_of(replicas.pay_to) == PRICE
    assert len(await ledger.settlements()) == 1


async def test_64_concurrent_redemptions_over_three_replicas_run_the_tool_once(
    replicas: Cluster, ledger: PostgresLedger, anvil: AnvilChain, payer: LocalAccount
) -> None:
    group = [replicas.add() for _ in range(3)]
    replicas.start(*group)
    request_id, quoted = await challenge(group[0], "q3")
    assert (await pay_on_page(group[1], request_id, signed(payer, quoted))).status_code == 200

    results = []

    async def attempt(index: int) -> None:
        results.append(await redeem(group[index % 3], request_id, "q3"))

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tasks:
            for index in range(64):
                tasks.start_soon(attempt, index)

    succeeded = [r for r in results if not r.is_error]
    assert len(results) == 64
    assert len(succeeded) == 1, [text_of(r) for r in results if not r.is_error]
    assert all(("in use" in text_of(r)) or ("already" in text_of(r)) for r in results if r.is_error)
    assert [line for line in replicas.run_lines() if line.startswith("start")] == [
        line.replace("end", "start") for line in replicas.run_lines() if line.startswith("end")
    ]
    assert len(replicas.run_lines()) == 2
    stored = await ledger.get(request_id)
    assert stored is not None and stored.state is State.CONSUMED
    assert anvil.balance_of(replicas.pay_to) == PRICE


async def test_64_concurrent_payments_of_one_request_settle_once(
    replicas: Cluster, ledger: PostgresLedger, anvil: AnvilChain, payer: LocalAccount
) -> None:
    group = [replicas.add() for _ in range(3)]
    replicas.start(*group)
    request_id, quoted = await challenge(group[0], "q4")
    # 64 distinct authorizations (fresh nonces) of the same payer for the same request.
    payments = [signed(payer, quoted) for _ in range(64)]
    assert len({p.payload.authorization.nonce for p in payments}) == 64
    results = []

    async def attempt(index: int) -> None:
        results.append(await pay_with_meta(group[index % 3], "q4", payments[index]))

    with anyio.fail_after(180):
        async with anyio.create_task_group() as tasks:
            for index in range(64):
                tasks.start_soon(attempt, index)

    succeeded = [r for r in results if not r.is_error]
    assert len(succeeded) == 1
    # Refused before any money moved: exactly one transfer reached the chain.
    assert anvil.balance_of(replicas.pay_to) == PRICE
    assert anvil.balance_of(payer.address) == FUNDED - PRICE
    assert len(await ledger.settlements()) == 1
    assert len([line for line in replicas.run_lines() if line.startswith("end")]) == 1
    stored = await ledger.get(request_id)
    assert stored is not None and stored.state is State.CONSUMED


async def test_a_request_id_is_honoured_only_for_its_own_tool_on_any_replica(
    replicas: Cluster, ledger: PostgresLedger, payer: LocalAccount
) -> None:
    a, b = replicas.add(), replicas.add()
    replicas.start(a, b)
    request_id, quoted = await challenge(a, "q5")
    assert (await pay_on_page(a, request_id, signed(payer, quoted))).status_code == 200
    async with Client(b.url) as client:
        free = await client.call_tool("ping", {"payment_request_id": request_id})
    # The free tool ignores it (it is not paid); the request stays paid and redeemable.
    assert not free.is_error
    stored = await ledger.get(request_id)
    assert stored is not None and stored.state is State.PAID
    unknown = await redeem(b, "pr_" + "x" * 24, "q5")
    assert unknown.is_error and "no payment request" in text_of(unknown)
    assert not (await call(b, {"question": "q5", "payment_request_id": request_id})).is_error

"""SIGKILL a replica at each step of a payment; after a restart nothing is lost or taken twice.

The replica kills itself (a crash hook in the test server wrapping the real
settlement backend, ledger and tool) at the chosen step. Restarted, it
reconciles the ledger against the chain; the assertions are on anvil balances
and on PostgreSQL rows.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import pytest
from eth_account.signers.local import LocalAccount

from x402_mcp.core.states import State
from x402_mcp.gate.reconcile import awaiting_reconciliation
from x402_mcp.ledger import PostgresLedger

from ..chains import AnvilChain
from ..replicas.cluster import Cluster, cluster
from ..replicas.helpers import PRICE, challenge, pay_with_meta, redeem, signed, text_of

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.anvil]

FUNDED = 10_000_000
GRACE = 1.0  # seconds before reconciliation presumes a settlement's process dead
LEASE = 2  # seconds a tool run holds its claim


@pytest.fixture
def replicas(anvil: AnvilChain, tmp_path: Path) -> Iterator[Cluster]:
    with cluster(anvil, tmp_path) as running:
        yield running


@pytest.mark.parametrize(
    ("point", "on_chain_before_restart", "state_before_restart"),
    [
        ("after_authorization", 0, State.SETTLING),
        ("after_send", PRICE, State.SETTLING),
        # Recorded under the claim of the run that was to follow: redeemable once its lease lapses.
        ("after_record", PRICE, State.REDEEMING),
        ("during_tool", PRICE, State.REDEEMING),
    ],
)
async def test_a_replica_killed_mid_payment_loses_nothing_and_settles_once(
    replicas: Cluster,
    anvil: AnvilChain,
    payer: LocalAccount,
    point: str,
    on_chain_before_restart: int,
    state_before_restart: State,
) -> None:
    replica = replicas.add(crash=point, grace=GRACE, lease=LEASE)
    replicas.start(replica)
    ledger = PostgresLedger(replicas.ledger_url, schema=replicas.schema)
    await ledger.open()
    try:
        request_id, quoted = await challenge(replica, "q")
        payment = signed(payer, quoted)
        with pytest.raises(Exception):  # noqa: B017, PT011 (the connection dies with the process)
            await pay_with_meta(replica, "q", payment)
        assert replicas.wait_dead(replica) == -signal.SIGKILL

        before = await ledger.get(request_id)
        assert before is not None and before.state is state_before_restart
        assert anvil.balance_of(replicas.pay_to) == on_chain_before_restart
        if state_before_restart is State.SETTLING:
            # What `x402-mcp ledger pending` shows: awaiting reconciliation.
            await anyio.sleep(GRACE + 0.2)
            stale = await awaiting_reconciliation(ledger, now=time.time(), grace_seconds=GRACE)
            assert [r.id for r in stale] == [request_id]
        if state_before_restart is State.REDEEMING:
            await anyio.sleep(LEASE + 0.2)

        replicas.restart(replica, REPLICA_CRASH="")
        result = await redeem(replica, request_id, "q")
        assert not result.is_error, text_of(result)

        after = await ledger.get(request_id)
        assert after is not None and after.state is State.CONSUMED
        [settlement] = await ledger.settlements(request_id)
        assert settlement.amount == PRICE and after.tx_hash == settlement.tx_hash
        receipt = anvil.w3.eth.get_transaction_receipt(settlement.tx_hash)  # type: ignore[arg-type]
        assert receipt["status"] == 1
        # Settled exactly once, and the payer got what was paid for.
        assert anvil.balance_of(replicas.pay_to) == PRICE
        assert anvil.balance_of(payer.address) == FUNDED - PRICE
        ends = [line for line in replicas.run_lines() if line.startswith("end")]
        assert ends == [f"end {replica.port} q"]
        # The payer's own retry of the same payment is now refused, not charged again.
        replay = await pay_with_meta(replica, "q", payment)
        assert replay.is_error
        assert anvil.balance_of(payer.address) == FUNDED - PRICE
    finally:
        await ledger.close()


@pytest.fixture
def payer(anvil: AnvilChain) -> LocalAccount:
    return anvil.new_account(usdc="10")


async def test_the_hosted_url_of_a_dead_replica_is_served_by_a_live_one(
    replicas: Cluster, payer: LocalAccount, anvil: AnvilChain
) -> None:
    a, b = replicas.add(), replicas.add()
    replicas.start(a, b)
    request_id, quoted = await challenge(a, "q")
    a.process.kill()  # type: ignore[union-attr]
    replicas.wait_dead(a)
    async with httpx2.AsyncClient(timeout=60) as http:
        from x402_mcp.core.wire import encode_header

        paid = await http.get(
            f"{b.base}/pay/{request_id}", headers={"PAYMENT-SIGNATURE": encode_header(signed(payer, quoted))}
        )
    assert paid.status_code == 200, paid.text
    result = await redeem(b, request_id, "q")
    assert not result.is_error, text_of(result)
    assert anvil.balance_of(replicas.pay_to) == PRICE

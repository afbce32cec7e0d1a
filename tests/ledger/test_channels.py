"""Batch-settlement channels in the ledger, on every backend (see `store` in conftest.py): a voucher
and its charge are stored together and durably; a channel is serialised, so a second voucher
racing the first gets a conflict, never a second charge; claims and sweeps collect the charges."""

from __future__ import annotations

import os
import secrets
import sqlite3
from dataclasses import replace
from typing import Any

import anyio
import anyio.to_thread
import pytest
from eth_account import Account

from x402_mcp.errors import ChannelConflict, LedgerError
from x402_mcp.ledger import SQLLedger
from x402_mcp.ledger.base import Owner
from x402_mcp.schemes.batch import reasons
from x402_mcp.schemes.batch.digests import channel_id
from x402_mcp.schemes.batch.records import ChainSnapshot, ChannelRecord
from x402_mcp.schemes.batch.wire import ChannelConfig, Voucher

from .conftest import Store

pytestmark = pytest.mark.anyio

NOW = 1_700_000_000.5
NOW_INT = int(NOW)
NETWORK = "eip155:84532"
USDC = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
RECEIVER = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
OWNER = Owner(RECEIVER, NETWORK, USDC)
PRICE = 10_000
BIG = 2**200  # an amount no 64-bit column holds


def new_channel(*, receiver: str = RECEIVER, balance: int = 100_000, **changes: Any) -> ChannelRecord:
    payer = Account.create().address
    config = ChannelConfig(
        payer=payer,
        payer_authorizer=payer,
        receiver=receiver,
        receiver_authorizer=Account.create().address,
        token=USDC,
        withdraw_delay=900,
        salt="0x" + os.urandom(32).hex(),
    )
    record = ChannelRecord(
        channel_id=channel_id(config, 84532),
        network=NETWORK,
        config=config,
        chain=ChainSnapshot(balance=balance, total_claimed=0),
        synced_at=NOW,
        updated_at=NOW,
    )
    return replace(record, **changes)


def voucher_for(record: ChannelRecord, ceiling: int) -> Voucher:
    return Voucher(
        channel_id=record.channel_id,
        max_claimable_amount=str(ceiling),
        signature="0x" + secrets.token_hex(65),
    )


async def opened(ledger: Any, **changes: Any) -> ChannelRecord:
    return await ledger.open_channel(new_channel(**changes), now=NOW)


async def test_a_channel_is_stored_once_and_read_back_whole(ledger: SQLLedger) -> None:
    record = new_channel(
        balance=BIG, chain=ChainSnapshot(BIG, 7, withdraw_requested_at=NOW_INT, refund_nonce=BIG)
    )
    stored = await ledger.open_channel(record, now=NOW)
    assert stored == replace(record, updated_at=NOW)
    assert await ledger.channel(record.channel_id) == stored
    assert await ledger.channel(record.channel_id.upper().replace("0X", "0x")) == stored
    # A second open (another deposit on the same channel) keeps what the ledger holds.
    again = await ledger.open_channel(replace(record, charged=5, chain=ChainSnapshot(1, 0)), now=NOW + 1)
    assert again == stored


async def test_a_channel_belongs_to_its_receiver_network_and_token(ledger: SQLLedger) -> None:
    ours = await opened(ledger)
    theirs = await opened(ledger, receiver=Account.create().address)
    assert await ledger.channel(theirs.channel_id, owner=OWNER) is None
    assert await ledger.channel(ours.channel_id, owner=OWNER) == ours
    assert [record.channel_id for record in await ledger.channels(owner=OWNER)] == [ours.channel_id]
    assert len(await ledger.channels()) == 2


async def test_a_charge_stores_the_voucher_with_it_and_survives_a_reopen(store: Store) -> None:
    first = store.ledger()
    await first.open()
    record = await opened(first)
    voucher = voucher_for(record, PRICE)
    after, line = await first.record_charge(
        record.channel_id, voucher, base=0, amount=PRICE - 1, tool="search", now=NOW + 1, request_id="pr_1"
    )
    assert (after.charged, after.signed_max_claimable, after.signature) == (
        PRICE - 1,
        PRICE,
        voucher.signature,
    )
    assert (line.amount, line.cumulative, line.max_claimable_amount) == (PRICE - 1, PRICE - 1, PRICE)
    await first.close()

    again = store.ledger()
    await again.open()
    try:
        assert await again.channel(record.channel_id) == after
        assert await again.charges(record.channel_id) == [line]
    finally:
        await again.close()


async def test_a_voucher_checked_at_a_stale_base_or_overcharged_changes_nothing(ledger: SQLLedger) -> None:
    record = await opened(ledger)
    await ledger.record_charge(
        record.channel_id, voucher_for(record, PRICE), base=0, amount=PRICE, tool="t", now=NOW
    )
    with pytest.raises(ChannelConflict) as stale:
        await ledger.record_charge(
            record.channel_id, voucher_for(record, PRICE), base=0, amount=PRICE, tool="t", now=NOW
        )
    assert stale.value.reason == reasons.CUMULATIVE_AMOUNT_MISMATCH
    with pytest.raises(ChannelConflict) as over:
        await ledger.record_charge(
            record.channel_id, voucher_for(record, 2 * PRICE), base=PRICE, amount=PRICE + 1, tool="t", now=NOW
        )
    assert over.value.reason == reasons.CHARGE_EXCEEDS_SIGNED_CUMULATIVE
    with pytest.raises(ChannelConflict) as missing:
        await ledger.record_charge(
            "0x" + "00" * 32, voucher_for(record, PRICE), base=0, amount=1, tool="t", now=NOW
        )
    assert missing.value.reason == reasons.MISSING_CHANNEL
    stored = await ledger.channel(record.channel_id)
    assert stored is not None and stored.charged == PRICE
    assert [charge.amount for charge in await ledger.charges(record.channel_id)] == [PRICE]


async def test_a_held_channel_is_busy_until_released_or_lapsed(ledger: SQLLedger) -> None:
    record = await opened(ledger)
    held = await ledger.reserve_channel(
        record.channel_id, base=0, reservation="call-1", until=NOW + 30, now=NOW
    )
    assert held.busy(NOW) and held.reservation == "call-1"
    with pytest.raises(ChannelConflict) as busy:
        await ledger.reserve_channel(record.channel_id, base=0, reservation="call-2", until=NOW + 30, now=NOW)
    assert busy.value.reason == reasons.CHANNEL_BUSY
    with pytest.raises(ChannelConflict):
        await ledger.record_charge(
            record.channel_id,
            voucher_for(record, PRICE),
            base=0,
            amount=1,
            tool="t",
            now=NOW,
            reservation="call-2",
        )
    # The holder's charge releases the hold.
    after, _ = await ledger.record_charge(
        record.channel_id,
        voucher_for(record, PRICE),
        base=0,
        amount=1,
        tool="t",
        now=NOW,
        reservation="call-1",
    )
    assert after.reservation is None and not after.busy(NOW)
    # A failed call lets go; a dead one's hold lapses and is taken over.
    await ledger.reserve_channel(record.channel_id, base=1, reservation="call-3", until=NOW + 30, now=NOW)
    assert await ledger.release_channel(record.channel_id, "call-3")
    assert not await ledger.release_channel(record.channel_id, "call-3")
    await ledger.reserve_channel(record.channel_id, base=1, reservation="call-4", until=NOW + 30, now=NOW)
    taken = await ledger.reserve_channel(
        record.channel_id, base=1, reservation="call-5", until=NOW + 90, now=NOW + 31
    )
    assert taken.reservation == "call-5"


async def test_racing_vouchers_on_one_channel_charge_once(store: Store) -> None:
    # Several replicas (each its own ledger: connections, pool, SQLite writer) charge vouchers
    # checked at the same base at once: one charge, every other meets it.
    ledgers = [store.ledger() for _ in range(4)]
    for ledger in ledgers:
        await ledger.open()
    try:
        record = await opened(ledgers[0])
        outcomes: list[object] = []

        async def attempt(ledger: Any, n: int) -> None:
            try:
                outcomes.append(
                    await ledger.record_charge(
                        record.channel_id,
                        voucher_for(record, PRICE),
                        base=0,
                        amount=PRICE,
                        tool=f"t{n}",
                        now=NOW,
                    )
                )
            except ChannelConflict as conflict:
                outcomes.append(conflict.reason)

        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                for n in range(12):
                    group.start_soon(attempt, ledgers[n % len(ledgers)], n)
        charged = [outcome for outcome in outcomes if not isinstance(outcome, str)]
        assert len(charged) == 1
        assert sorted(set(o for o in outcomes if isinstance(o, str))) == [reasons.CUMULATIVE_AMOUNT_MISMATCH]
        assert len(await ledgers[1].charges(record.channel_id)) == 1
        stored = await ledgers[2].channel(record.channel_id)
        assert stored is not None and stored.charged == PRICE
    finally:
        for ledger in ledgers:
            await ledger.close()


async def test_a_charge_waits_for_the_channel_another_transaction_holds(store: Store, tmp_path: Any) -> None:
    # The serialisation itself: while another connection holds the channel (and charges it),
    # a charge waits for it, then meets its charge; it never reads around the lock.
    ledger = store.ledger()
    await ledger.open()
    try:
        record = await opened(ledger)
        locked, release = anyio.Event(), anyio.Event()
        finished: list[object] = []

        async def charge() -> None:
            await locked.wait()
            try:
                await ledger.record_charge(
                    record.channel_id, voucher_for(record, PRICE), base=0, amount=PRICE, tool="t", now=NOW
                )
                finished.append("charged")
            except ChannelConflict as conflict:
                finished.append(conflict.reason)

        async with anyio.create_task_group() as group:
            group.start_soon(charge)
            async with _holding(store, record.channel_id, charged=PRICE, locked=locked, release=release):
                await anyio.sleep(0.5)
                assert finished == []  # still waiting for the lock
                release.set()
        assert finished == [reasons.CUMULATIVE_AMOUNT_MISMATCH]
    finally:
        await ledger.close()


class _holding:
    """Another connection's transaction that holds the channel row and sets its charge,
    committing when `release` is set."""

    def __init__(
        self, store: Store, channel: str, *, charged: int, locked: anyio.Event, release: anyio.Event
    ):
        self.store, self.channel, self.charged = store, channel, charged
        self.locked, self.release = locked, release
        self._tasks: Any = None

    async def __aenter__(self) -> None:
        self._tasks = anyio.create_task_group()
        await self._tasks.__aenter__()
        self._tasks.start_soon(self._hold)

    async def __aexit__(self, *exc: object) -> None:
        await self._tasks.__aexit__(*exc)

    async def _hold(self) -> None:
        if self.store.kind == "postgres":
            import psycopg

            from .conftest import POSTGRES_URL

            async with await psycopg.AsyncConnection.connect(POSTGRES_URL) as conn:
                schema = self.store.ledger().schema  # type: ignore[attr-defined]
                await conn.execute(f'SET search_path TO "{schema}"')
                await conn.execute("SELECT 1 FROM channels WHERE channel_id = %s FOR UPDATE", [self.channel])
                await conn.execute(
                    "UPDATE channels SET charged = %s WHERE channel_id = %s", [self.charged, self.channel]
                )
                self.locked.set()
                await self.release.wait()
                await conn.commit()
            return
        path = self.store.ledger().path  # type: ignore[attr-defined]
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "UPDATE channels SET charged = ? WHERE channel_id = ?", [str(self.charged), self.channel]
            )
            self.locked.set()
            await self.release.wait()
            await anyio.to_thread.run_sync(conn.execute, "COMMIT")
        finally:
            conn.close()


async def test_sync_mirrors_the_contract(ledger: SQLLedger) -> None:
    record = await opened(ledger)
    chain = ChainSnapshot(
        balance=250_000, total_claimed=20_000, withdraw_requested_at=NOW_INT, refund_nonce=3
    )
    synced = await ledger.sync_channel(record.channel_id, chain, now=NOW + 5)
    assert synced is not None and synced.chain == chain and synced.synced_at == NOW + 5
    assert await ledger.sync_channel("0x" + "00" * 32, chain, now=NOW) is None


async def test_claims_collect_charges_and_sweeps_settle_claims(ledger: SQLLedger) -> None:
    calm = await opened(ledger)
    leaving = await opened(ledger)
    idle = await opened(ledger)
    foreign = await opened(ledger, receiver=Account.create().address)
    for record, amount in ((calm, 3_000), (leaving, 5_000), (foreign, 1_000)):
        await ledger.record_charge(
            record.channel_id, voucher_for(record, PRICE), base=0, amount=amount, tool="t", now=NOW
        )
    # The payer of `leaving` started a withdrawal: its vouchers are claimed first.
    await ledger.sync_channel(
        leaving.channel_id, ChainSnapshot(100_000, 0, withdraw_requested_at=NOW_INT), now=NOW
    )
    owed = await ledger.unclaimed(owner=OWNER)
    assert [record.channel_id for record in owed] == [leaving.channel_id, calm.channel_id]
    assert idle.channel_id not in {record.channel_id for record in owed}

    assert await ledger.begin_claim("claim-1", owed, now=NOW + 1) == 8_000
    with pytest.raises(LedgerError, match="recorded already"):
        await ledger.begin_claim("claim-1", owed, now=NOW + 1)
    with pytest.raises(LedgerError, match="at least one channel"):
        await ledger.begin_claim("claim-0", [], now=NOW)
    with pytest.raises(LedgerError, match="one receiver"):
        await ledger.begin_claim("claim-x", [*owed, await ledger.channel(foreign.channel_id)], now=NOW)
    assert await ledger.submitted(owner=OWNER) == [("claim-1", "claim", 8_000)]
    entries = await ledger.collection_entries("claim-1")
    assert sorted((c, ceiling, total) for c, ceiling, total, _ in entries) == sorted(
        [(calm.channel_id, PRICE, 3_000), (leaving.channel_id, PRICE, 5_000)]
    )
    assert all(signature is not None for *_, signature in entries)
    assert await ledger.finish_collection("claim-1", confirmed=True, tx_hash="0xclaim", now=NOW + 2)
    assert not await ledger.finish_collection("claim-1", confirmed=True, tx_hash="0xclaim", now=NOW + 3)
    assert await ledger.unclaimed(owner=OWNER) == []
    assert await ledger.submitted(owner=OWNER) == []

    # A failed claim changes no channel.
    await ledger.record_charge(
        calm.channel_id, voucher_for(calm, 3_000 + PRICE), base=3_000, amount=PRICE, tool="t", now=NOW + 4
    )
    pending = await ledger.unclaimed(owner=OWNER)
    assert await ledger.begin_claim("claim-2", pending, now=NOW + 5) == PRICE
    assert await ledger.finish_collection("claim-2", confirmed=False, tx_hash=None, now=NOW + 6)
    assert [record.unclaimed for record in await ledger.unclaimed(owner=OWNER)] == [PRICE]

    assert [record.unsettled for record in await ledger.unsettled(owner=OWNER)] == [5_000, 3_000]
    assert await ledger.begin_sweep("sweep-1", owner=OWNER, now=NOW + 7) == 8_000
    assert await ledger.finish_collection("sweep-1", confirmed=True, tx_hash="0xsweep", now=NOW + 8)
    assert await ledger.unsettled(owner=OWNER) == []
    settled = await ledger.channel(leaving.channel_id)
    assert settled is not None and (settled.settled, settled.chain.total_claimed) == (5_000, 5_000)
    assert await ledger.begin_sweep("sweep-2", owner=OWNER, now=NOW + 9) == 0

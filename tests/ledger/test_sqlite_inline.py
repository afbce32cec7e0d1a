"""The SQLite ledger's statements on the event loop: they never wait there for a lock."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import anyio
import pytest

from x402_mcp.core.states import State
from x402_mcp.errors import LedgerError
from x402_mcp.ledger import SQLiteLedger
from x402_mcp.ledger import sqlite as sqlite_module

from .test_contract import issued_in, new_request

pytestmark = pytest.mark.anyio


def hold_write_lock(path: Path, seconds: float, taken: threading.Event) -> threading.Thread:
    """Another process's writer, as SQLite sees it: a connection holding the write lock a while."""

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        taken.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    return thread


async def test_a_write_meeting_another_writers_lock_waits_for_it_off_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = SQLiteLedger(path, busy_timeout=10)
    await ledger.open()
    try:
        taken = threading.Event()
        holder = hold_write_lock(path, 0.5, taken)
        await anyio.to_thread.run_sync(taken.wait)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await anyio.sleep(0.01)
                ticks += 1

        async with anyio.create_task_group() as group:
            group.start_soon(tick)
            request = await issued_in(ledger, State.PAID)  # waits about 0.5 s for the lock
            group.cancel_scope.cancel()
        await anyio.to_thread.run_sync(holder.join)

        assert await ledger.get(request.id) == request
        # The loop ran on while the write waited: it waited in a worker thread.
        assert ticks >= 10
    finally:
        await ledger.close()


async def test_a_write_that_waits_past_the_busy_timeout_fails_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = SQLiteLedger(path, busy_timeout=0.2)
    await ledger.open()
    try:
        taken = threading.Event()
        holder = hold_write_lock(path, 1.0, taken)
        await anyio.to_thread.run_sync(taken.wait)
        request = new_request()
        with pytest.raises(LedgerError, match="locked"):
            await ledger.issue(request)
        await anyio.to_thread.run_sync(holder.join)
        assert await ledger.get(request.id) is None
    finally:
        await ledger.close()


async def test_checkpoints_run_in_their_own_thread_and_keep_the_wal_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_module, "CHECKPOINT_EVERY", 20)
    path = tmp_path / "ledger.sqlite"
    ledger = SQLiteLedger(path)
    await ledger.open()
    wal = Path(f"{path}-wal")
    try:
        sizes = []
        for _ in range(10):
            for _ in range(40):
                await issued_in(ledger, State.ISSUED)
            await anyio.sleep(0.05)  # the checkpointer's turn
            sizes.append((await anyio.Path(wal).stat()).st_size)
        # Without checkpoints the WAL would grow with every commit (400 of several pages each,
        # over 5 MB); checkpointed, it is reused from its start and stays a fraction of that.
        assert sizes[-1] < 400 * 4096
    finally:
        await ledger.close()
    # Everything is there for a fresh reader, whatever the checkpoints did.
    reopened = SQLiteLedger(path)
    await reopened.open()
    try:
        assert len(await reopened.requests(limit=1000)) == 400
    finally:
        await reopened.close()

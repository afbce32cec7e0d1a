"""What is particular to the SQLite ledger: the file, its storage, other processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from x402_mcp.core.states import Event, State
from x402_mcp.errors import LedgerError
from x402_mcp.ledger import SQLiteLedger
from x402_mcp.ledger._migrations import ledger_migrations
from x402_mcp.ledger.sqlite import SQLITE

from .test_contract import NOW, new_request

pytestmark = pytest.mark.anyio


async def test_the_file_is_in_wal_mode_and_amounts_are_exact_text(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dirs" / "ledger.sqlite"  # missing directories are created
    ledger = SQLiteLedger(path)
    await ledger.open()
    request = new_request(price=2**255 + 7)
    await ledger.issue(request)
    await ledger.close()

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        row = conn.execute("SELECT typeof(price), price FROM payment_requests").fetchone()
        assert row == ("text", str(2**255 + 7))
        for bad in ("007", "-1", "1.5", "", "1e3"):
            with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
                conn.execute("UPDATE payment_requests SET price = ?", (bad,))


async def test_an_in_memory_ledger_works_and_is_private(tmp_path: Path) -> None:
    first, second = SQLiteLedger(":memory:"), SQLiteLedger(":memory:")
    await first.open()
    await second.open()
    request = new_request()
    await first.issue(request)
    paid = await first.transition(request.id, Event.BEGIN_SETTLEMENT, now=NOW, payload="p")
    assert await first.get(request.id) == paid
    assert await second.get(request.id) is None
    await first.close()
    await second.close()


async def test_a_path_that_cannot_be_created_fails_to_open_with_a_ledger_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    ledger = SQLiteLedger(blocker / "ledger.sqlite")
    with pytest.raises(LedgerError, match="SQLite ledger"):
        await ledger.open()


def test_processes_opening_one_fresh_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    go = tmp_path / "go"
    script = textwrap.dedent(
        f"""
        import anyio, os, sys, time
        sys.path.insert(0, {str(Path(__file__).parents[2])!r})
        from x402_mcp.ledger import PaymentRequest, SQLiteLedger

        while not os.path.exists({str(go)!r}):
            time.sleep(0.001)

        async def main() -> None:
            ledger = SQLiteLedger({str(path)!r})
            await ledger.open()
            await ledger.issue(PaymentRequest(
                f"pr_{{os.getpid()}}", "tool", 1, "0xA", "eip155:1", "0xB", None, 0.0, 60.0, 60
            ))
            await ledger.close()

        anyio.run(main)
        """
    )
    workers = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(3)]
    go.touch()
    assert [worker.wait(timeout=60) for worker in workers] == [0] * 3
    with sqlite3.connect(path) as conn:
        versions = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
        assert versions == [(migration.version,) for migration in ledger_migrations(SQLITE)]
        assert conn.execute("SELECT count(*) FROM payment_requests").fetchone() == (3,)


async def test_a_sweep_waits_for_another_writer_instead_of_failing(tmp_path: Path) -> None:
    # expire_overdue reads before it writes. Were its transaction deferred, a commit by another
    # connection between that read and its write would fail it at once (SQLITE_BUSY_SNAPSHOT);
    # BEGIN IMMEDIATE makes it wait for the write lock before reading instead.
    path = tmp_path / "ledger.sqlite"
    ledger = SQLiteLedger(path)
    await ledger.open()
    overdue = new_request(expires_at=NOW)
    await ledger.issue(overdue)

    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    sweeping = threading.Event()

    async def sweep() -> list[str]:
        sweeping.set()
        return await ledger.expire_overdue(now=NOW + 1)

    async with anyio.create_task_group() as group:
        swept: list[str] = []

        async def run() -> None:
            swept.extend(await sweep())

        group.start_soon(run)
        await anyio.to_thread.run_sync(sweeping.wait)
        await anyio.sleep(0.2)  # let the sweep reach SQLite while the other writer holds the lock
        other.execute("INSERT INTO audit (request_id, at, event, detail) VALUES (NULL, 0, 'other', 'writer')")
        other.execute("COMMIT")
    other.close()
    assert swept == [overdue.id]
    stored = await ledger.get(overdue.id)
    assert stored is not None
    assert stored.state is State.EXPIRED
    await ledger.close()

"""A ledger in one SQLite file, safe to share between tasks, threads and processes.

Connections: one writer connection behind an `anyio.CapacityLimiter(1)`, and a
few read-only connections behind a limiter of their own. SQLite admits one
writer at a time whatever we do. Queueing our writers on the limiter hands the
write lock over in microseconds and in FIFO order, where writers on separate
connections would collide and back off in SQLite's busy handler (sleeps of 1 to
100 ms). In WAL mode the readers run beside the writer and see the last
committed state. Another process that shares the file still meets ours in
SQLite's own locks, so every write transaction is `BEGIN IMMEDIATE`: it takes
the write lock up front, where a deferred transaction that upgrades later can
fail with SQLITE_BUSY.

Where the statements run: a statement of the money path takes 10 to 30 µs, a
hop to a worker thread and back 100 to 400 µs (more on a loaded machine). So a
call whose connection is free runs on the event loop itself, with SQLite's busy
timeout at zero: it never waits there. When it would wait (our connection is in
use by a worker thread, or another process holds the file's write lock), it
goes to a worker thread, which waits under the busy timeout as before; a
transaction that met the lock was rolled back, so running it again there is
safe. WAL checkpoints, the one slow thing a commit can trigger (they write the
database file and fsync it), run in a checkpointer thread of their own instead
of inside a commit on the loop. Long statements (listings, sweeps) always run
in a worker thread.

Amounts are TEXT of decimal digits, kept canonical by a CHECK: SQLite's INTEGER
stops at 2**63 - 1 (under ten tokens of an 18-decimal asset) and REAL rounds.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread

from ..errors import LedgerError
from ._dialect import Dialect, Result, Script, Statement, run_script
from ._ledger import SQLLedger
from ._sql import Tables

T = TypeVar("T")
R = TypeVar("R")

logger = logging.getLogger("x402_mcp")

# About as often as SQLite's own auto-checkpoint (1000 pages) with a transition writing a few pages.
CHECKPOINT_EVERY = 250

SQLITE = Dialect(
    tables=Tables.with_prefix(),
    param="?",
    # SQLite's INTEGER stops at 2**63 - 1 and REAL rounds: amounts are canonical decimal TEXT.
    amount=str,
    amount_column=(
        "TEXT NOT NULL CHECK ({column} GLOB '[0-9]*' AND {column} NOT GLOB '*[^0-9]*'"
        " AND ({column} = '0' OR {column} NOT GLOB '0*'))"
    ),
    time_type="REAL",
    audit_id="INTEGER PRIMARY KEY AUTOINCREMENT",
    # Canonical decimal TEXT: the longer is the larger, and digits of one length compare as text.
    covers="(length(price) > length(?) OR (length(price) = length(?) AND price >= ?))",
    one_statement_writes=False,
    returning=sqlite3.sqlite_version_info >= (3, 35, 0),
    time_param="?",
    amount_param="?",
)


def _set_busy_timeout(conn: sqlite3.Connection, seconds: float) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(seconds * 1000)}")


def without_waiting(
    work: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection
) -> tuple[bool, T | None]:
    """Run `work` at once on `conn` (whose busy timeout is zero): `(True, its value)`, or
    `(False, None)` when SQLite would have had to wait for a lock (its transaction was rolled
    back, so nothing happened and `work` may run again where waiting is fine)."""
    try:
        return True, work(conn)
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return False, None
        raise


def _took(limiter: anyio.CapacityLimiter) -> bool:
    """Whether a token of `limiter` was free and is now ours (release it)."""
    try:
        limiter.acquire_nowait()
    except anyio.WouldBlock:
        return False
    return True


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, holding SQLite's write lock from its first statement."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def execute_on(conn: sqlite3.Connection, statement: Statement) -> Result:
    try:
        # fetchall: the statement must be finished before the transaction commits.
        cursor = conn.execute(statement.sql, statement.params)
        return Result(cursor.fetchall(), cursor.rowcount)
    except sqlite3.IntegrityError as exc:
        if statement.duplicate is None:
            raise
        raise statement.duplicate() from exc


def _run_fresh(script: Callable[[], Script[T]], write: bool, conn: sqlite3.Connection) -> T:
    """A new `script()` on `conn` (so a run refused on the loop runs again, from its start, in a
    thread), a write in one `BEGIN IMMEDIATE` transaction."""
    if not write:
        return run_script(script(), partial(execute_on, conn))
    with immediate(conn):
        return run_script(script(), partial(execute_on, conn))


@dataclass(slots=True)
class _Connections:
    writer: sqlite3.Connection
    write_limiter: anyio.CapacityLimiter
    idle_readers: list[sqlite3.Connection]
    read_limiter: anyio.CapacityLimiter | None  # None: reads share the writer (":memory:" or readers=0)
    checkpointer: _Checkpointer | None  # None: no WAL (":memory:")
    writes: int = 0


class _Checkpointer:
    """Runs `PRAGMA wal_checkpoint(PASSIVE)` in a thread of its own when asked.

    PASSIVE copies what it can without taking any lock a reader or the writer
    needs, so writes on the loop go on while it works.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._wanted = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="x402-mcp-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def request(self) -> None:
        self._wanted.set()

    def stop(self) -> None:
        """Finish the checkpoint in progress, if any, and end the thread (blocks: call in a thread)."""
        self._stopping = True
        self._wanted.set()
        self._thread.join()

    def _loop(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                self._wanted.wait()
                self._wanted.clear()
                if self._stopping:
                    return
                try:
                    if conn is None:
                        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    # The WAL only grows until the next one succeeds; nothing is lost meanwhile.
                    logger.warning("could not checkpoint the SQLite ledger %s", self._path, exc_info=True)
        finally:
            if conn is not None:
                conn.close()


class SQLiteLedger(SQLLedger):
    """The `Ledger` in a SQLite database file (created on `open()` if missing).

    `path` may be `":memory:"` for a private in-process database, handy in
    tests; it then lives as long as the ledger stays open. `readers` is the
    number of read-only connections serving `get`, `find_redeemable`,
    `settlements` and `audit_trail` beside the one writer; `busy_timeout` is
    how long (seconds) a write waits for another process holding the file's
    write lock before it fails with `LedgerError`.

    Every transition also appends a line to the audit trail, in the same
    transaction.
    """

    def __init__(self, path: str | os.PathLike[str], *, readers: int = 4, busy_timeout: float = 5.0) -> None:
        self.path = os.fspath(path)
        super().__init__(SQLITE, f"SQLite ledger {self.path}")
        self._memory = self.path == ":memory:"
        self._readers = 0 if self._memory else max(readers, 0)
        self._busy_timeout = busy_timeout
        self._connections: _Connections | None = None

    def __repr__(self) -> str:
        return f"SQLiteLedger({self.path!r})"

    # -- lifecycle -----------------------------------------------------------------------------------

    async def open(self) -> None:
        """Create the file and its tables, or bring an older schema up to date.

        Safe to call twice, and from several processes at once (the migration
        runs in one `BEGIN IMMEDIATE` transaction).

        Raises:
            LedgerError: the file cannot be opened or put in WAL mode, or it was
                migrated by a newer x402-mcp.
        """
        if self._connections is not None:
            return
        opened: list[sqlite3.Connection] = []
        try:
            with self._translate():
                writer = await anyio.to_thread.run_sync(self._connect, False)
                opened.append(writer)
                await anyio.to_thread.run_sync(_run_fresh, self._migrate, True, writer)
                for _ in range(self._readers):
                    opened.append(await anyio.to_thread.run_sync(self._connect, True))
                for conn in opened:
                    # From now on a statement on the loop never waits; one that would goes to a thread.
                    _set_busy_timeout(conn, 0)
                if not self._memory:
                    writer.execute("PRAGMA wal_autocheckpoint=0")
        except BaseException:
            for conn in opened:
                conn.close()
            raise
        self._connections = _Connections(
            writer=writer,
            write_limiter=anyio.CapacityLimiter(1),
            idle_readers=opened[1:],
            read_limiter=anyio.CapacityLimiter(self._readers) if self._readers else None,
            checkpointer=None if self._memory else _Checkpointer(self.path),
        )

    async def close(self) -> None:
        """Close every connection once the calls in flight have finished; idempotent."""
        connections, self._connections = self._connections, None
        if connections is None:
            return
        async with connections.write_limiter:
            await anyio.to_thread.run_sync(connections.writer.close)
        if connections.checkpointer is not None:
            await anyio.to_thread.run_sync(connections.checkpointer.stop)
        if connections.read_limiter is not None:
            # Take every reader token, so no read is using a connection while we close it.
            borrowers = [object() for _ in connections.idle_readers]
            for borrower in borrowers:
                await connections.read_limiter.acquire_on_behalf_of(borrower)
            try:
                for reader in connections.idle_readers:
                    await anyio.to_thread.run_sync(reader.close)
                connections.idle_readers.clear()
            finally:
                for borrower in borrowers:
                    connections.read_limiter.release_on_behalf_of(borrower)

    async def _execute(
        self, script: Callable[[], Script[T]], *, write: bool, long: bool = False, atomic: bool = False
    ) -> T:
        # Every write is one BEGIN IMMEDIATE transaction, so `atomic` asks nothing more.
        work = partial(_run_fresh, script, write)
        return await (self._write(work, long=long) if write else self._read(work, long=long))

    def _connect(self, readonly: bool) -> sqlite3.Connection:
        if not self._memory and not readonly:
            # The default path lives in the user's data directory, which may not exist yet.
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; every write says BEGIN IMMEDIATE itself.
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            if not self._memory and not readonly:
                mode = self._enter_wal(conn)
                if mode != "wal":
                    raise LedgerError(f"SQLite ledger {self.path}: the file system refused WAL mode ({mode})")
            # With WAL, NORMAL survives a crashed process; only a power cut may lose the last commits.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            if readonly:
                conn.execute("PRAGMA query_only=ON")
        except BaseException:
            conn.close()
            raise
        return conn

    def _enter_wal(self, conn: sqlite3.Connection) -> str:
        """Switch a fresh file to WAL mode, waiting out other processes doing the same.

        Changing the journal mode can fail with "database is locked" at once, without
        SQLite's busy handler, while another connection is creating the same file, so
        the wait is ours (bounded by the busy timeout).
        """
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchone()
                return str(mode)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.005)

    # -- plumbing ------------------------------------------------------------------------------------

    def _open_connections(self) -> _Connections:
        if self._connections is None:
            raise LedgerError(f"{self!r} is not open; await ledger.open() first")
        return self._connections

    async def _write(self, work: Callable[[sqlite3.Connection], T], *, long: bool = False) -> T:
        """Run `work` on the writer: on the loop when it is free and `work` is short (see the
        module's docstring), else in a worker thread."""
        connections = self._open_connections()
        limiter = connections.write_limiter
        # Long work, or a worker thread holding the connection: queue behind it in a thread.
        if not long and _took(limiter):
            try:
                with self._translate():
                    done, value = without_waiting(work, connections.writer)
            finally:
                limiter.release()
            if done:
                self._wrote(connections)
                return value  # type: ignore[return-value]
        with self._translate():
            value = await anyio.to_thread.run_sync(self._patiently, work, connections.writer, limiter=limiter)
        self._wrote(connections)
        return value

    def _wrote(self, connections: _Connections) -> None:
        connections.writes += 1
        if connections.checkpointer is not None and connections.writes % CHECKPOINT_EVERY == 0:
            connections.checkpointer.request()

    async def _read(self, work: Callable[[sqlite3.Connection], T], *, long: bool = False) -> T:
        connections = self._open_connections()
        limiter = connections.read_limiter
        if limiter is None:
            return await self._write(work, long=long)
        idle = connections.idle_readers

        def borrow(run: Callable[[Callable[[sqlite3.Connection], T], sqlite3.Connection], R]) -> R:
            # The limiter has as many tokens as there are readers, so one is idle unless we closed.
            if not idle:
                raise LedgerError(f"{self!r} was closed")
            reader = idle.pop()
            try:
                return run(work, reader)
            finally:
                idle.append(reader)

        if not long and _took(limiter):
            try:
                with self._translate():
                    done, value = borrow(without_waiting)
            finally:
                limiter.release()
            if done:
                return value  # type: ignore[return-value]
        with self._translate():
            return await anyio.to_thread.run_sync(borrow, self._patiently, limiter=limiter)

    def _patiently(self, work: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection) -> T:
        """`work` in a worker thread, waiting up to the busy timeout for another process's lock."""
        _set_busy_timeout(conn, self._busy_timeout)
        try:
            return work(conn)
        finally:
            _set_busy_timeout(conn, 0)

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"SQLite ledger {self.path}: {exc}") from exc

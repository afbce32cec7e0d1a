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
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from ..errors import LedgerError, StateConflict
from ..lifecycle import Event, State
from ._changes import (
    COLUMNS,
    Change,
    audit_line,
    cap_reached,
    check_lease,
    claimable,
    duplicate_settlement,
    expires_instead,
    expiry,
    issue_detail,
    missing,
    plan_claim,
    plan_transition,
    possible_id,
    request_from_row,
    request_values,
    settlement_from_row,
)
from ._migrations import Migration, bounded_state_statements, claimed_payments_statements, pending
from ._sql import (
    SETTLEMENT_COLUMNS,
    Queries,
    Tables,
    count_open_sql,
    expired_where,
    get_sql,
    owned_clause,
    purge_expired_sql,
    redeemable_sql,
    renew_sql,
    requests_sql,
    update_sql,
)
from .base import Claim, Owner, PaymentKey, PaymentRequest, SettlementRecord

T = TypeVar("T")
R = TypeVar("R")

logger = logging.getLogger("x402_mcp")

# RETURNING (SQLite 3.35) gives the moved row in the UPDATE itself; older libraries read it back.
_RETURNING = f" RETURNING {', '.join(COLUMNS)}" if sqlite3.sqlite_version_info >= (3, 35, 0) else ""

# About as often as SQLite's own auto-checkpoint (1000 pages) with a transition writing a few pages.
CHECKPOINT_EVERY = 250

_TABLES = Tables.with_prefix()
_Q = Queries.render(_TABLES, "?")
# The guards `claimable` checks, as SQL: price is canonical decimal TEXT, so the longer is the
# larger and digits of one length compare as text (parameters: tool, price three times).
_COVERS = " AND tool = ? AND (length(price) > length(?) OR (length(price) = length(?) AND price >= ?))"
# Appended to _RETURNING: the network of the request's latest settlement, as `settlements()` lists it last.
_SETTLED_NETWORK = (
    f", (SELECT network FROM {_TABLES.settlements} s WHERE s.request_id = {_TABLES.requests}.id"
    " ORDER BY s.settled_at DESC, s.tx_hash DESC LIMIT 1)"
)


def _covers(price: int) -> tuple[str, str, str]:
    digits = str(price)
    return digits, digits, digits


_INSERT_SETTLEMENT = (
    f"INSERT INTO settlements (request_id, {SETTLEMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def _digits(column: str) -> str:
    """A CHECK that `column` is a canonical decimal integer of at least zero, as text."""
    return (
        f"CHECK ({column} GLOB '[0-9]*' AND {column} NOT GLOB '*[^0-9]*'"
        f" AND ({column} = '0' OR {column} NOT GLOB '0*'))"
    )


_STATES = ", ".join(f"'{state.value}'" for state in State)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "payment requests, settlements, audit",
        (
            f"""CREATE TABLE payment_requests (
                id TEXT PRIMARY KEY,
                tool TEXT NOT NULL,
                price TEXT NOT NULL {_digits("price")},
                asset TEXT NOT NULL,
                network TEXT NOT NULL,
                pay_to TEXT NOT NULL,
                caller TEXT,
                created_at REAL NOT NULL,
                expires_at REAL NOT NULL,
                max_timeout_seconds INTEGER NOT NULL,
                state TEXT NOT NULL CHECK (state IN ({_STATES})),
                description TEXT NOT NULL,
                payload TEXT,
                tx_hash TEXT,
                payer TEXT,
                paid_at REAL,
                lease_until REAL,
                consumed_at REAL,
                result TEXT
            )""",
            "CREATE INDEX payment_requests_redeemable ON payment_requests (tool, caller, state, created_at)",
            "CREATE INDEX payment_requests_expiry ON payment_requests (expires_at) WHERE state = 'issued'",
            f"""CREATE TABLE settlements (
                network TEXT NOT NULL,
                tx_hash TEXT NOT NULL,
                request_id TEXT NOT NULL REFERENCES payment_requests (id),
                payer TEXT NOT NULL,
                amount TEXT NOT NULL {_digits("amount")},
                asset TEXT NOT NULL,
                settled_at REAL NOT NULL,
                PRIMARY KEY (network, tx_hash)
            )""",
            "CREATE INDEX settlements_request ON settlements (request_id)",
            """CREATE TABLE audit (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                request_id TEXT,
                at REAL NOT NULL,
                event TEXT NOT NULL,
                detail TEXT NOT NULL
            )""",
            "CREATE INDEX audit_request ON audit (request_id, id)",
        ),
    ),
    Migration(
        2, "claim fencing token; open and settling indexes", bounded_state_statements("payment_requests")
    ),
    Migration(
        3,
        "claimed payments; unattached audit and stored result indexes",
        claimed_payments_statements(_TABLES, time_type="REAL"),
    ),
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


def _count_open(conn: sqlite3.Connection, caller: str | None, now: float, owner: Owner | None) -> int:
    sql, params = count_open_sql(_TABLES, "?", caller, owner)
    (count,) = conn.execute(sql, (*params, now)).fetchone()
    return int(count)


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


class SQLiteLedger:
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
                await anyio.to_thread.run_sync(self._migrate, writer)
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

    # -- the Ledger protocol -------------------------------------------------------------------------

    async def issue(self, request: PaymentRequest, *, max_open: int | None = None) -> None:
        """Store a newly minted request and note it in the audit trail; with `max_open`,
        only while its caller holds fewer open requests (counted in the same transaction).

        Raises:
            TooManyOpenRequests: the caller is at `max_open` (nothing is written).
            LedgerError: the id is taken, the request is not `issued`, or its
                price is not a whole number of atomic units below 2**256.
        """
        values = request_values(request, amount=str)
        await self._write(partial(self._insert_request, request, values, max_open))

    async def claim_payment(self, key: PaymentKey, request_id: str, *, now: float) -> str:
        """Bind `key` to `request_id` unless it is bound already; return the request it is bound to."""

        def claim(conn: sqlite3.Connection) -> str:
            with immediate(conn):
                conn.execute(_Q.claim_payment, (key.network, key.payer, key.nonce, request_id, now))
                (owner,) = conn.execute(_Q.claim_owner, (key.network, key.payer, key.nonce)).fetchone()
                return str(owner)

        return await self._write(claim)

    async def renew_lease(
        self, request_id: str, claim_id: str | None, *, lease_until: float, now: float
    ) -> bool:
        """Extend the lease of the claim `claim_id` (None: of a settlement in progress);
        False when the request is no longer held so."""
        check_lease(lease_until, now)
        if not possible_id(request_id):
            return False
        sql, params = renew_sql(_Q, request_id, claim_id, lease_until)

        def renew(conn: sqlite3.Connection) -> bool:
            with immediate(conn):
                return conn.execute(sql, params).rowcount == 1

        return await self._write(renew)

    async def get(self, request_id: str, *, owner: Owner | None = None) -> PaymentRequest | None:
        """The request as it now stands, or None when there is no such id (or `owner` did not quote it)."""
        if not possible_id(request_id):
            return None
        sql, params = get_sql(_Q, request_id, owner)
        row = await self._read(lambda conn: conn.execute(sql, params).fetchone())
        return None if row is None else request_from_row(row)

    async def transition(
        self,
        request_id: str,
        event: Event,
        *,
        now: float,
        payload: str | None = None,
        settlement: SettlementRecord | None = None,
        lease_until: float | None = None,
        result: str | None = None,
        claim_id: str | None = None,
        owner: Owner | None = None,
    ) -> PaymentRequest:
        """Apply `event` as one compare-and-set and return the request as it now stands.

        Raises:
            StateConflict: the request is missing or not `owner`'s (`current` None) or not in a
                state `event` starts from. A `begin_settlement` on an issued
                request at or past `expires_at` expires it and reports
                `current == "expired"`.
            LedgerError: an argument is missing or misplaced, or the settlement's
                transaction is already recorded (for any request).
        """
        change = plan_transition(
            event,
            now=now,
            payload=payload,
            settlement=settlement,
            lease_until=lease_until,
            result=result,
            claim_id=claim_id,
            owner=owner,
        )
        if not possible_id(request_id):
            raise missing(request_id, event)
        row, current = await self._write(partial(self._apply, request_id, change))
        if row is None:
            raise StateConflict(request_id, event.value, current)
        return request_from_row(row)

    async def claim(
        self,
        request_id: str,
        *,
        tool: str,
        price: int,
        lease_until: float,
        claim_id: str,
        now: float,
        owner: Owner | None = None,
    ) -> Claim | None:
        """Claim paid `request_id` for one run of `tool` costing `price`, with the network it
        settled on; None (nothing written) when it is not claimable so (or not `owner`'s)."""
        change = plan_claim(now=now, lease_until=lease_until, claim_id=claim_id, owner=owner)
        if not possible_id(request_id):
            return None
        return await self._write(partial(self._take, request_id, None, change, tool, price))

    async def claim_redeemable(
        self,
        *,
        tool: str,
        caller: str,
        price: int,
        lease_until: float,
        claim_id: str,
        now: float,
        owner: Owner | None = None,
    ) -> Claim | None:
        """Claim the request `find_redeemable` would find, if it covers `price`, as `claim` does."""
        change = plan_claim(now=now, lease_until=lease_until, claim_id=claim_id, owner=owner)
        pick = redeemable_sql(_Q, tool=tool, caller=caller, now=now, owner=owner, ids_only=True)
        return await self._write(partial(self._take, "", pick, change, tool, price))

    async def find_redeemable(
        self, *, tool: str, caller: str, now: float, owner: Owner | None = None
    ) -> PaymentRequest | None:
        """The oldest request of `caller` for `tool` (quoted by `owner`, when given) that is
        paid, or redeeming under a lapsed lease."""
        sql, params = redeemable_sql(_Q, tool=tool, caller=caller, now=now, owner=owner, ids_only=False)
        row = await self._read(lambda conn: conn.execute(sql, params).fetchone())
        return None if row is None else request_from_row(row)

    async def settlements(self, request_id: str | None = None) -> list[SettlementRecord]:
        """Recorded settlements, oldest first: all of them, or those of one request."""
        if request_id is None:
            rows = await self._read(lambda conn: conn.execute(_Q.settlements).fetchall(), long=True)
        elif not possible_id(request_id):
            return []
        else:
            rows = await self._read(lambda conn: conn.execute(_Q.settlements_of, (request_id,)).fetchall())
        return [settlement_from_row(row) for row in rows]

    async def audit(self, request_id: str | None, event: str, detail: str, *, now: float) -> None:
        """Append one line to the audit trail (its detail bounded)."""
        stored_id, stored_event, stored_detail = audit_line(request_id, event, detail)

        def append(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                conn.execute(_Q.insert_audit, (stored_id, now, stored_event, stored_detail))

        await self._write(append)

    async def audit_trail(self, request_id: str | None = None) -> list[tuple[float, str | None, str, str]]:
        """Audit lines `(at, request_id, event, detail)` in the order written: all, or one request's."""
        if request_id is None:
            rows = await self._read(lambda conn: conn.execute(_Q.audit_trail).fetchall(), long=True)
        elif not possible_id(request_id):
            return []
        else:
            rows = await self._read(lambda conn: conn.execute(_Q.audit_trail_of, (request_id,)).fetchall())
        return [(at, rid, event, detail) for at, rid, event, detail in rows]

    async def requests(
        self, *, states: Collection[State] | None = None, limit: int = 100, owner: Owner | None = None
    ) -> list[PaymentRequest]:
        """Requests in any of `states` (all when None) of `owner` (any when None), newest first,
        at most `limit`."""
        sql, params = requests_sql(_TABLES, "?", states, limit, owner)
        rows = await self._read(lambda conn: conn.execute(sql, params).fetchall(), long=True)
        return [request_from_row(row) for row in rows]

    async def count_open(self, *, caller: str | None, now: float, owner: Owner | None = None) -> int:
        """How many requests issued to `caller` (None: to callers without an identity)
        are still unpaid and unexpired at `now` (of `owner`, when given)."""
        return await self._read(lambda conn: _count_open(conn, caller, now, owner))

    async def purge_expired(self, *, before: float, owner: Owner | None = None) -> int:
        """Delete expired requests (of `owner`, when given) whose `expires_at` is before
        `before`, their audit lines and their payment claims."""
        *dependents, requests = purge_expired_sql(_TABLES, "?", owner)
        params = [State.EXPIRED.value, before, *expired_where("?", owner)[1]]

        def purge(conn: sqlite3.Connection) -> int:
            with immediate(conn):
                for statement in dependents:
                    conn.execute(statement, params)
                return int(conn.execute(requests, params).rowcount)

        return await self._write(purge, long=True)

    async def purge_unattached_audit(self, *, before: float) -> int:
        """Delete audit lines of no request written before `before`."""
        return await self._write(partial(self._run_counted, _Q.purge_unattached_audit, before), long=True)

    async def clear_results(self, *, before: float, owner: Owner | None = None) -> int:
        """Forget the stored results of requests (of `owner`, when given) consumed before `before`."""
        if owner is None:
            return await self._write(partial(self._run_counted, _Q.clear_results, before), long=True)
        params = [before, *owner.values()]

        def clear(conn: sqlite3.Connection) -> int:
            with immediate(conn):
                return int(conn.execute(_Q.clear_results_owned, params).rowcount)

        return await self._write(clear, long=True)

    async def expire_overdue(self, *, now: float, owner: Owner | None = None) -> list[str]:
        """Expire every issued request (of `owner`, when given) whose `expires_at` is at or
        before `now`; return their ids."""
        change = expiry(now, "overdue", owner)
        sql = f"SELECT id FROM {_TABLES.requests} WHERE state = ? AND expires_at <= ?"
        params: list[object] = [State.ISSUED.value, now]
        if owner is not None:
            sql += f" AND {owned_clause('?')}"
            params += owner.values()

        def sweep(conn: sqlite3.Connection) -> list[str]:
            with immediate(conn):
                ids = [request_id for (request_id,) in conn.execute(f"{sql} ORDER BY id", params)]
                for request_id in ids:
                    self._compare_and_set(conn, request_id, change)
                return ids

        return await self._write(sweep, long=True)

    # -- inside the worker threads -------------------------------------------------------------------

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

    def _migrate(self, conn: sqlite3.Connection) -> None:
        with immediate(conn):
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {_TABLES.migrations}"
                " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            applied = [version for (version,) in conn.execute(f"SELECT version FROM {_TABLES.migrations}")]
            for migration in pending(MIGRATIONS, applied, where=f"SQLite ledger {self.path}"):
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(
                    f"INSERT INTO {_TABLES.migrations} (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, time.time()),
                )

    def _run_counted(self, sql: str, before: float, conn: sqlite3.Connection) -> int:
        with immediate(conn):
            return int(conn.execute(sql, (before,)).rowcount)

    def _insert_request(
        self, request: PaymentRequest, values: list[object], max_open: int | None, conn: sqlite3.Connection
    ) -> None:
        with immediate(conn):
            # Counted under the write lock the insert then uses: no other issue can come between.
            if max_open is not None:
                held = _count_open(conn, request.caller, request.created_at, Owner.of(request))
                if held >= max_open:
                    raise cap_reached(request.caller, held, max_open)
            try:
                conn.execute(_Q.insert_request, values)
            except sqlite3.IntegrityError as exc:
                raise LedgerError(f"payment request {request.id} already exists") from exc
            conn.execute(_Q.insert_audit, (request.id, request.created_at, "issue", issue_detail(request)))

    def _apply(
        self, request_id: str, change: Change, conn: sqlite3.Connection
    ) -> tuple[tuple[Any, ...] | None, str | None]:
        """The updated row, or None and the state that refused the change (None: no such request)."""
        with immediate(conn):
            moved = self._compare_and_set(conn, request_id, change)
            if moved is not None:
                return moved, None
            # Still inside the write transaction: what we read now is what refused the change.
            # Another server's request is missing to this one: its state is not told.
            sql, params = get_sql(_Q, request_id, change.owner)
            found = conn.execute(sql, params).fetchone()
            if found is None:
                return None, None
            row = request_from_row(found)
            if expires_instead(change, row.state, row.expires_at):
                self._compare_and_set(
                    conn, request_id, expiry(change.now, "settlement begun after expires_at", change.owner)
                )
                return None, State.EXPIRED.value
            return None, row.state.value

    def _take(
        self,
        request_id: str,
        pick: tuple[str, list[object]] | None,
        change: Change,
        tool: str,
        price: int,
        conn: sqlite3.Connection,
    ) -> Claim | None:
        """`Ledger.claim` inside the writer: the tool and price guards join the compare-and-set,
        and its RETURNING gives the settled network, so the claim is one UPDATE and its audit line."""
        if not _RETURNING:
            return self._take_read_first(request_id, pick, change, tool, price, conn)
        sql, params = update_sql(change, request_id, table=_TABLES.requests, param="?", pick=pick)
        with immediate(conn):
            rows = conn.execute(
                sql + _COVERS + _RETURNING + _SETTLED_NETWORK, [*params, tool, *_covers(price)]
            ).fetchall()
            if not rows:
                return None
            *moved, network = rows[0]
            conn.execute(_Q.insert_audit, (moved[0], change.now, change.event.value, change.detail))
        return Claim(request_from_row(moved), None if network is None else str(network))

    def _take_read_first(
        self,
        request_id: str,
        pick: tuple[str, list[object]] | None,
        change: Change,
        tool: str,
        price: int,
        conn: sqlite3.Connection,
    ) -> Claim | None:
        """`_take` for SQLite before 3.35 (no RETURNING): read, check and move under the write lock."""
        with immediate(conn):
            if pick is None:
                row = conn.execute(*get_sql(_Q, request_id, change.owner)).fetchone()
            else:
                row = conn.execute(_Q.redeemable_owned if change.owner else _Q.redeemable, pick[1]).fetchone()
            if row is None:
                return None
            found = request_from_row(row)
            if not claimable(found, tool=tool, price=price, now=change.now, owner=change.owner):
                return None
            moved = self._compare_and_set(conn, found.id, change)
            if moved is None:
                return None
            settled = conn.execute(_Q.settled_network, (found.id,)).fetchone()
            return Claim(request_from_row(moved), None if settled is None else str(settled[0]))

    def _compare_and_set(
        self, conn: sqlite3.Connection, request_id: str, change: Change
    ) -> tuple[Any, ...] | None:
        """Apply `change` inside the caller's write transaction: the moved row, or None."""
        sql, params = update_sql(change, request_id, table=_TABLES.requests, param="?")
        if _RETURNING:
            # fetchall: the statement must be finished before the transaction commits.
            rows = conn.execute(sql + _RETURNING, params).fetchall()
            if not rows:
                return None
            moved: tuple[Any, ...] = rows[0]
        else:
            if conn.execute(sql, params).rowcount != 1:
                return None
            moved = conn.execute(_Q.get, (request_id,)).fetchone()
        if change.settlement is not None:
            s = change.settlement
            try:
                conn.execute(
                    _INSERT_SETTLEMENT,
                    (request_id, s.tx_hash, s.payer, str(s.amount), s.asset, s.network, s.settled_at),
                )
            except sqlite3.IntegrityError as exc:
                raise duplicate_settlement(s) from exc
        conn.execute(_Q.insert_audit, (request_id, change.now, change.event.value, change.detail))
        return moved

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

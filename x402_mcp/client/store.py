"""`SpendStore`: the durable record of what budgets have spent, in one SQLite file.

Every payment is written down *before* its signature leaves the process
(`reserve`, which checks the limits and records the payment, with the
authorization that will be signed for it, in one `BEGIN IMMEDIATE`
transaction), then marked `spent` when the server returns a receipt, or
`uncertain` when the server says the payment was not taken (it holds the
signature, and may have settled it anyway) or nobody can tell (the connection
dropped mid-call). Only what cannot move money is `released`: a payment whose
signing failed, or whose authorization the chain shows expired unused
(`onchain.reconcile`). Reserved and uncertain payments count against the limits like spent ones: a crash can
make the budget look fuller than it is, never emptier. So only a reservation is
synced to disk before it returns (`synchronous=FULL`); the later state changes
are not (a power cut may undo them, leaving the payment reserved, which counts)
and reach the disk with the next sync. Several processes may
share the file; SQLite's write lock serialises their reservations.

Amounts: `amount` is the token's atomic units, `usd` the exact dollars, both
TEXT (SQLite's INTEGER stops at 2**63 - 1 and REAL rounds); sums are Decimal.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread

from ..core.wire import PaymentRequirements
from ..errors import LedgerError
from ..ledger._migrations import pending
from ..ledger.sqlite import immediate, without_waiting
from .budget import DAY_SECONDS, Budget

# The records and schema live in `spend_records`; they are re-exported (`X as X`) so that
# `from x402_mcp.client.store import Spend` keeps working, as it did when they were defined here.
from .spend_records import MIGRATIONS as MIGRATIONS
from .spend_records import PAYMENT_COLUMNS, decimal_or_none, spend_from_row
from .spend_records import Spend as Spend
from .spend_records import Spending as Spending
from .spend_records import SpendState as SpendState
from .window import Window

T = TypeVar("T")


_COMMITTED = "SELECT committed FROM budgets WHERE name = ?"
_AUTOCHECKPOINT_PAGES = 1000  # SQLite's default
_DAY_ROWS = "SELECT usd FROM payments WHERE budget = ? AND state != 'released' AND created_at > ?"


class SpendStore:
    """The spending records in the SQLite file at `path` (created on `open()`)."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._limiter = anyio.CapacityLimiter(1)

    def __repr__(self) -> str:
        return f"SpendStore({str(self.path)!r})"

    async def open(self) -> None:
        """Create the file and its tables, or bring an older schema up to date; idempotent.

        Raises:
            LedgerError: the file cannot be opened, or a newer x402-mcp migrated it.
        """
        async with self._limiter:
            if self._conn is None:
                with self._translate():
                    self._conn = await anyio.to_thread.run_sync(self._connect)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            async with self._limiter:
                await anyio.to_thread.run_sync(conn.close)

    async def remember_limits(self, budget: Budget, *, now: float) -> None:
        """Note the budget's limits, so `x402-mcp spend` can show them beside the spending."""

        def note(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                self._ensure_budget(conn, budget.name, now)
                conn.execute(
                    "UPDATE budgets SET per_call = ?, total = ?, per_day = ?, payees = ?, updated_at = ?"
                    " WHERE name = ?",
                    (
                        *(
                            None if v is None else str(v)
                            for v in (budget.per_call, budget.total, budget.per_day)
                        ),
                        None if budget.payees is None else ",".join(sorted(budget.payees)),
                        now,
                        budget.name,
                    ),
                )

        await self._run(note)

    async def committed(self, budget: str, *, now: float) -> tuple[Decimal, Decimal]:
        """(total, last 24 hours) committed by `budget`, pending payments included."""
        return await self._run(lambda conn: self._committed(conn, budget, now))

    @staticmethod
    def new_id() -> str:
        return "sp_" + secrets.token_urlsafe(12)

    async def reserve(
        self,
        budget: Budget,
        requirement: PaymentRequirements,
        *,
        usd: Decimal,
        tool: str,
        now: float,
        spend_id: str | None = None,
        window: Window | None = None,
    ) -> str:
        """Check `budget`'s limits and record the payment as reserved, atomically, synced to
        disk; returns its id (`spend_id` if given, so a caller that is cancelled while this runs
        still knows which record to discard). `window` is the authorization that will be signed
        for it (payer, nonce, expiry), kept so the chain can later tell whether it was used.

        Raises:
            BudgetExceeded, PayeeNotAllowed: nothing was recorded.
        """
        spend_id = spend_id or self.new_id()

        def reserve(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                total, day = self._committed(conn, budget.name, now)
                budget.check(usd, requirement.pay_to, spent_total=total, spent_day=day)
                conn.execute(
                    f"INSERT INTO payments ({PAYMENT_COLUMNS}) VALUES ({', '.join('?' * 16)})",
                    (
                        spend_id, budget.name, tool, requirement.pay_to, requirement.network,
                        requirement.asset, requirement.amount, str(usd), SpendState.RESERVED.value,
                        now, now, None, "", None if window is None else window.payer,
                        None if window is None else window.nonce,
                        None if window is None else str(window.valid_before),
                    ),
                )  # fmt: skip
                self._ensure_budget(conn, budget.name, now)
                conn.execute(
                    "UPDATE budgets SET committed = ?, updated_at = ? WHERE name = ?",
                    (str(total + usd), now, budget.name),
                )

        await self._run(reserve)
        return spend_id

    async def mark_spent(self, spend_id: str, *, tx_hash: str | None, now: float, detail: str = "") -> None:
        await self._finish(spend_id, SpendState.SPENT, now=now, tx_hash=tx_hash, detail=detail)

    async def mark_uncertain(self, spend_id: str, detail: str, *, now: float) -> None:
        await self._finish(spend_id, SpendState.UNCERTAIN, now=now, tx_hash=None, detail=detail)

    async def release(self, spend_id: str, detail: str, *, now: float) -> None:
        """The payment was not taken: it stops counting against the budget."""
        await self._finish(spend_id, SpendState.RELEASED, now=now, tx_hash=None, detail=detail)

    async def discard(self, spend_id: str) -> None:
        """Forget a reservation nothing was signed for (a no-op when there is none), unsynced:
        lost in a power cut, it stays reserved and counts, as a crash could leave it anyway."""

        def discard(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                row = conn.execute(
                    "SELECT budget, usd FROM payments WHERE id = ? AND state = ?",
                    (spend_id, SpendState.RESERVED.value),
                ).fetchone()
                if row is None:
                    return
                budget, usd = row
                conn.execute("DELETE FROM payments WHERE id = ?", (spend_id,))
                (committed,) = conn.execute(_COMMITTED, (budget,)).fetchone()
                conn.execute(
                    "UPDATE budgets SET committed = ? WHERE name = ?",
                    (str(Decimal(committed) - Decimal(usd)), budget),
                )

        await self._run_unsynced(discard)

    async def get(self, spend_id: str) -> Spend | None:
        row = await self._run(
            lambda conn: conn.execute(
                f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = ?", (spend_id,)
            ).fetchone()
        )
        return None if row is None else spend_from_row(row)

    async def payments(self, budget: str, *, limit: int = 20) -> list[Spend]:
        """The budget's most recent payments, newest first."""
        rows = await self._run(
            lambda conn: conn.execute(
                f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE budget = ?"
                " ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (budget, limit),
            ).fetchall()
        )
        return [spend_from_row(row) for row in rows]

    async def unsettled(self, budget: str) -> list[Spend]:
        """The budget's payments still counted without a receipt (reserved or uncertain) whose
        authorization is known, oldest first: the ones the chain may settle either way."""
        rows = await self._run(
            lambda conn: conn.execute(
                f"SELECT {PAYMENT_COLUMNS} FROM payments WHERE budget = ? AND nonce IS NOT NULL"
                " AND state IN ('reserved', 'uncertain') ORDER BY created_at, rowid",
                (budget,),
            ).fetchall()
        )
        return [spend_from_row(row) for row in rows]

    async def limits(self, budget: str) -> tuple[str | None, str | None, str | None, str | None] | None:
        """The limits `budget` was last opened with (per_call, total, per_day, payees as
        comma-separated addresses), or None for a budget never opened."""
        row = await self._run(
            lambda conn: conn.execute(
                "SELECT per_call, total, per_day, payees FROM budgets WHERE name = ?", (budget,)
            ).fetchone()
        )
        return None if row is None else (row[0], row[1], row[2], row[3])

    async def budgets(self) -> list[str]:
        rows = await self._run(lambda conn: conn.execute("SELECT name FROM budgets ORDER BY name").fetchall())
        return [str(name) for (name,) in rows]

    async def spending(self, budget: str, *, now: float) -> Spending:
        def read(conn: sqlite3.Connection) -> Spending:
            total, day = self._committed(conn, budget, now)
            (count,) = conn.execute("SELECT COUNT(*) FROM payments WHERE budget = ?", (budget,)).fetchone()
            (pending_,) = conn.execute(
                "SELECT COUNT(*) FROM payments WHERE budget = ? AND state IN ('reserved', 'uncertain')",
                (budget,),
            ).fetchone()
            limits = conn.execute(
                "SELECT per_call, total, per_day FROM budgets WHERE name = ?", (budget,)
            ).fetchone() or (None, None, None)
            return Spending(
                budget, total, day, int(count), int(pending_), *(decimal_or_none(v) for v in limits)
            )

        return await self._run(read)

    # -- inside the worker thread --------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL, not NORMAL: a reservation must survive a power cut, or a crash could overspend.
            conn.execute("PRAGMA synchronous=FULL")
            with immediate(conn):
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations"
                    " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
                )
                applied = [v for (v,) in conn.execute("SELECT version FROM schema_migrations")]
                for migration in pending(MIGRATIONS, applied, where=f"budget file {self.path}"):
                    for statement in migration.statements:
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                        (migration.version, migration.name, time.time()),
                    )
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _committed(conn: sqlite3.Connection, budget: str, now: float) -> tuple[Decimal, Decimal]:
        row = conn.execute(_COMMITTED, (budget,)).fetchone()
        total = Decimal(row[0]) if row else Decimal(0)
        day = sum(
            (Decimal(usd) for (usd,) in conn.execute(_DAY_ROWS, (budget, now - DAY_SECONDS))), Decimal(0)
        )
        return total, day

    @staticmethod
    def _ensure_budget(conn: sqlite3.Connection, budget: str, now: float) -> None:
        conn.execute(
            "INSERT INTO budgets (name, committed, updated_at) VALUES (?, '0', ?)"
            " ON CONFLICT (name) DO NOTHING",
            (budget, now),
        )

    async def _finish(
        self, spend_id: str, state: SpendState, *, now: float, tx_hash: str | None, detail: str
    ) -> None:
        def finish(conn: sqlite3.Connection) -> None:
            # Unsynced (the next reservation's sync carries it): were it lost in a power cut, the
            # payment would still read reserved or uncertain, which counts against the limits
            # like spent. Only a reservation must be durable.
            self._finish_in(conn, spend_id, state, now=now, tx_hash=tx_hash, detail=detail)

        await self._run_unsynced(finish)

    def _finish_in(
        self,
        conn: sqlite3.Connection,
        spend_id: str,
        state: SpendState,
        *,
        now: float,
        tx_hash: str | None,
        detail: str,
    ) -> None:
        with immediate(conn):
            row = conn.execute("SELECT budget, usd, state FROM payments WHERE id = ?", (spend_id,)).fetchone()
            if row is None:
                raise LedgerError(f"no payment {spend_id} in {self.path}")
            budget, usd, current = row
            if current == SpendState.RELEASED.value or (
                current == SpendState.SPENT.value and state is not SpendState.RELEASED
            ):
                # The chain settled it while the call was still out (expired unused, or used):
                # what the call reports since changes nothing.
                return
            # Only a reservation (or a payment nobody could account for) changes state.
            if current not in (SpendState.RESERVED.value, SpendState.UNCERTAIN.value):
                raise LedgerError(f"payment {spend_id} is already {current}")
            conn.execute(
                "UPDATE payments SET state = ?, updated_at = ?, tx_hash = COALESCE(?, tx_hash),"
                " detail = ? WHERE id = ?",
                (state.value, now, tx_hash, detail, spend_id),
            )
            if state is SpendState.RELEASED:
                (committed,) = conn.execute(_COMMITTED, (budget,)).fetchone()
                conn.execute(
                    "UPDATE budgets SET committed = ?, updated_at = ? WHERE name = ?",
                    (str(Decimal(committed) - Decimal(usd)), now, budget),
                )

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        async with self._limiter:
            if self._conn is None:
                raise LedgerError(f"{self!r} is not open; await store.open() first")
            with self._translate():
                return await anyio.to_thread.run_sync(work, self._conn)

    async def _run_unsynced(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`_run` for a short write that is not synced to disk (`synchronous=NORMAL`): on the
        event loop's own thread, since it takes tens of microseconds and a hop to the worker
        thread costs more. Only when another connection holds the write lock does it wait, in
        the worker thread."""

        def unsynced(conn: sqlite3.Connection) -> T:
            conn.execute("PRAGMA synchronous=NORMAL")
            try:
                return work(conn)
            finally:
                conn.execute("PRAGMA synchronous=FULL")

        async with self._limiter:
            conn = self._conn
            if conn is None:
                raise LedgerError(f"{self!r} is not open; await store.open() first")
            with self._translate():
                # No waiting for the lock here, and no WAL checkpoint (it syncs): the next
                # reservation's commit, in the worker thread, checkpoints when one is due.
                conn.execute("PRAGMA busy_timeout=0")
                conn.execute("PRAGMA wal_autocheckpoint=0")
                try:
                    done, value = without_waiting(unsynced, conn)
                finally:
                    conn.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
                    conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout * 1000)}")
                if done:
                    return value  # type: ignore[return-value]
                return await anyio.to_thread.run_sync(unsynced, conn)

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"budget file {self.path}: {exc}") from exc

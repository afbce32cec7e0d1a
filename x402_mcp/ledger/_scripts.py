"""The ledger's steps of more than one statement, as scripts (see `_dialect`), once for every database."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from ..core.states import State
from ._changes import COLUMNS, Change, duplicate_settlement, expires_instead, expiry, request_from_row
from ._dialect import Dialect, Result, Rows, Script, Statement
from ._migrations import ledger_migrations, pending
from ._sql import SETTLEMENT_COLUMNS, Queries
from .base import Claim, SettlementRecord

T = TypeVar("T")


def single_statement(statement: Statement) -> Script[Result]:
    return (yield statement)


class LedgerScripts:
    """The statements of a ledger in one dialect, and the scripts that run several of them."""

    def __init__(self, dialect: Dialect, where: str) -> None:
        self._d = dialect
        self._t = dialect.tables
        self._q = Queries(dialect.tables, dialect.param)
        #: Names the store in errors (never a password).
        self._where = where
        # A claim's guards join its compare-and-set: the tool, and a stored price that covers the
        # one asked (every parameter of `Dialect.covers` is that price).
        self._claim_guard = f" AND tool = {dialect.param} AND {dialect.covers}"
        self._covers_params = dialect.covers.count(dialect.param)
        # A claim returns the row and the network of its latest settlement (as `settlements()` lists it last).
        self._claim_returning = (
            f"{', '.join(COLUMNS)}, (SELECT network FROM {self._t.settlements} s"
            f" WHERE s.request_id = {self._t.requests}.id ORDER BY s.settled_at DESC, s.tx_hash DESC LIMIT 1)"
        )

    async def _execute(
        self, script: Callable[[], Script[T]], *, write: bool, long: bool = False, atomic: bool = False
    ) -> T:
        """Run a fresh `script()` on a connection: `write`s in a write transaction where the
        database needs one for them, `atomic` ones always in one transaction; `long` ones
        (listings, sweeps) where they block nothing else. The driver's (see `_dialect`)."""
        raise NotImplementedError

    def _migrate(self) -> Script[None]:
        """Create the tables, or bring an older schema up to date (in one locked transaction)."""
        d, t = self._d, self._t
        for prelude in d.migration_prelude:
            yield Statement(prelude)
        yield Statement(
            f"CREATE TABLE IF NOT EXISTS {t.migrations}"
            f" (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at {d.time_type} NOT NULL)"
        )
        applied = [version for (version,) in (yield Statement(f"SELECT version FROM {t.migrations}")).rows]
        for migration in pending(ledger_migrations(d), applied, where=self._where):
            for statement in migration.statements:
                yield Statement(statement)
            yield Statement(
                f"INSERT INTO {t.migrations} (version, name, applied_at)"
                f" VALUES ({d.param}, {d.param}, {d.param})",
                [migration.version, migration.name, time.time()],
            )

    def _logged(
        self,
        write: Statement,
        *,
        returning: str,
        key: str | None,
        audit: list[object],
        settlement: SettlementRecord | None = None,
    ) -> Script[Rows]:
        """Run `write` (an INSERT or UPDATE of requests), and for each row it wrote its
        settlement (if any) and audit line (`audit`: at, event, detail); the rows written, as
        `returning` selects them (the id first).

        Without RETURNING (SQLite before 3.35), `write` must touch at most the row `key`,
        read back after it.
        """
        d, t, p = self._d, self._t, self._d.param
        recorded: list[object] = []
        if settlement is not None:
            s = settlement
            recorded = [s.tx_hash, s.payer, d.amount(s.amount), s.asset, s.network, s.settled_at]
        if d.one_statement_writes:
            parts = [f"moved AS ({write.sql} RETURNING {returning})"]
            if recorded:
                parts.append(
                    f"recorded AS (INSERT INTO {t.settlements} (request_id, {SETTLEMENT_COLUMNS})"
                    f" SELECT id, {p}, {p}, {d.amount_param}, {p}, {p}, {d.time_param} FROM moved)"
                )
            parts.append(
                f"logged AS (INSERT INTO {t.audit} (request_id, at, event, detail)"
                f" SELECT id, {d.time_param}, {p}, {p} FROM moved)"
            )
            sql = f"WITH {', '.join(parts)} SELECT * FROM moved ORDER BY id"
            return (yield Statement(sql, [*write.params, *recorded, *audit], write.duplicate)).rows
        if d.returning:
            rows = (yield Statement(f"{write.sql} RETURNING {returning}", write.params, write.duplicate)).rows
        else:
            done = yield write
            read_back = Statement(f"SELECT {returning} FROM {t.requests} WHERE id = {p}", [key])
            rows = (yield read_back).rows if done.rowcount == 1 else []
        for row in rows:
            if settlement is not None:
                duplicate = partial(duplicate_settlement, settlement)
                yield Statement(self._q.insert_settlement, [row[0], *recorded], duplicate)
            yield Statement(self._q.insert_audit, [row[0], *audit])
        return rows

    def _compare_and_set(
        self,
        request_id: str,
        change: Change,
        *,
        guard: tuple[str, list[object]] = ("", []),
        pick: tuple[str, list[object]] | None = None,
        returning: str = ", ".join(COLUMNS),
    ) -> Script[tuple[Any, ...] | None]:
        """Apply `change` (with the extra WHERE `guard`) to `request_id`, or to the row `pick`
        selects: the moved row, or None when the compare-and-set lost."""
        sql, params = self._q.update(change, request_id, pick)
        s = change.settlement
        write = Statement(
            sql + guard[0], params + guard[1], None if s is None else partial(duplicate_settlement, s)
        )
        audit: list[object] = [change.now, change.event.value, change.detail]
        rows = yield from self._logged(write, returning=returning, key=request_id, audit=audit, settlement=s)
        return rows[0] if rows else None

    def _refusal(
        self, request_id: str, change: Change
    ) -> Script[tuple[tuple[Any, ...] | None, State | None]]:
        """After a lost compare-and-set: no row, and the state that refused it (None: no such request).

        Holds the row it reads (`Dialect.lock_rows`, or SQLite's write transaction), so the
        state reported is the one that refused the change, not one a concurrent transaction
        left a moment later. If the row became eligible in between, the change is applied
        after all and its row returned instead.
        """
        # Another server's request is missing to this one: its state is not told.
        params: list[object] = [request_id]
        owned = self._q.owned(change.owner, params)
        found = yield Statement(
            f"SELECT state, expires_at FROM {self._t.requests} WHERE id = {self._d.param}{owned}"
            f"{self._d.lock_rows}",
            params,
        )
        if not found.rows:
            return None, None
        row = yield from self._compare_and_set(request_id, change)
        if row is not None:
            return row, None
        stored, expires_at = found.rows[0]
        state = State(stored)
        if expires_instead(change, state, expires_at):
            yield from self._compare_and_set(
                request_id, expiry(change.now, "settlement begun after expires_at", change.owner)
            )
            return None, State.EXPIRED
        return None, state

    def _take(
        self, request_id: str, pick: tuple[str, list[object]] | None, change: Change, tool: str, price: int
    ) -> Script[Claim | None]:
        """`claim`: the tool and price guards join the compare-and-set, which returns the settled
        network too, so a claim is one UPDATE and its audit line. (A claim that waited for
        another one re-checks all of it against the row that one committed.)"""
        if pick is not None and not self._d.returning:
            # Without RETURNING the moved row is read back by id: pick it first, under the write lock.
            picked = (yield Statement(*pick)).rows
            if not picked:
                return None
            request_id, pick = str(picked[0][0]), None
        guard = (self._claim_guard, [tool, *[self._d.amount(price)] * self._covers_params])
        returning = self._claim_returning
        row = yield from self._compare_and_set(
            request_id, change, guard=guard, pick=pick, returning=returning
        )
        if row is None:
            return None
        *columns, network = row
        return Claim(request_from_row(columns), None if network is None else str(network))

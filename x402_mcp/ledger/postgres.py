"""A ledger in PostgreSQL, shared by every replica of a server.

Connections: a psycopg 3 `AsyncConnectionPool` of autocommit connections. A
transition is one statement, so one transaction and one round trip: a
data-modifying CTE that runs the compare-and-set `UPDATE … RETURNING` and, only
for the row it moved, inserts the settlement and the audit line. Under READ
COMMITTED a second UPDATE of the same row waits for the first to commit, then
checks its WHERE again against the new row, so of many concurrent claims, from
one pool or several, exactly one matches.

Amounts are NUMERIC(78,0), which holds every uint256. Migrations run in one
transaction after `pg_advisory_xact_lock`, so replicas starting together take
turns and the later ones find nothing left to do.

psycopg is imported only when a `PostgresLedger` is made: the rest of x402-mcp
works without the `postgres` extra.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Collection, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, LedgerError, StateConflict
from ..lifecycle import Event, State
from ._changes import (
    COLUMNS,
    Change,
    audit_line,
    cap_reached,
    check_lease,
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
    redeemable_sql,
    renew_sql,
    requests_sql,
    update_sql,
)
from .base import Claim, Owner, PaymentKey, PaymentRequest, SettlementRecord

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

INSTALL_HINT = "PostgresLedger needs psycopg 3 and psycopg-pool: pip install 'mcp-x402[postgres]'"

# "x402mcp" in ASCII: the advisory lock every x402-mcp migrator takes, whatever its schema.
_MIGRATION_LOCK = 0x78343032_6D6370

# The first key of the two-key advisory locks that serialise issues per caller ("x4"; the
# one-key and two-key lock spaces never collide). The second is a hash of the caller.
_ISSUE_LOCK = 0x7834

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _migrations(t: Tables) -> tuple[Migration, ...]:
    states = ", ".join(f"'{state.value}'" for state in State)
    return (
        Migration(
            1,
            "payment requests, settlements, audit",
            (
                f"""CREATE TABLE {t.requests} (
                    id TEXT PRIMARY KEY,
                    tool TEXT NOT NULL,
                    price NUMERIC(78, 0) NOT NULL CHECK (price >= 0),
                    asset TEXT NOT NULL,
                    network TEXT NOT NULL,
                    pay_to TEXT NOT NULL,
                    caller TEXT,
                    created_at DOUBLE PRECISION NOT NULL,
                    expires_at DOUBLE PRECISION NOT NULL,
                    max_timeout_seconds INTEGER NOT NULL,
                    state TEXT NOT NULL CHECK (state IN ({states})),
                    description TEXT NOT NULL,
                    payload TEXT,
                    tx_hash TEXT,
                    payer TEXT,
                    paid_at DOUBLE PRECISION,
                    lease_until DOUBLE PRECISION,
                    consumed_at DOUBLE PRECISION,
                    result TEXT
                )""",
                f"CREATE INDEX payment_requests_redeemable ON {t.requests} (tool, caller, state, created_at)",
                f"CREATE INDEX payment_requests_expiry ON {t.requests} (expires_at) WHERE state = 'issued'",
                f"""CREATE TABLE {t.settlements} (
                    network TEXT NOT NULL,
                    tx_hash TEXT NOT NULL,
                    request_id TEXT NOT NULL REFERENCES {t.requests} (id),
                    payer TEXT NOT NULL,
                    amount NUMERIC(78, 0) NOT NULL CHECK (amount >= 0),
                    asset TEXT NOT NULL,
                    settled_at DOUBLE PRECISION NOT NULL,
                    PRIMARY KEY (network, tx_hash)
                )""",
                f"CREATE INDEX settlements_request ON {t.settlements} (request_id)",
                f"""CREATE TABLE {t.audit} (
                    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    request_id TEXT,
                    at DOUBLE PRECISION NOT NULL,
                    event TEXT NOT NULL,
                    detail TEXT NOT NULL
                )""",
                f"CREATE INDEX audit_request ON {t.audit} (request_id, id)",
            ),
        ),
        Migration(2, "claim fencing token; open and settling indexes", bounded_state_statements(t.requests)),
        Migration(
            3,
            "claimed payments; unattached audit and stored result indexes",
            claimed_payments_statements(t, time_type="DOUBLE PRECISION"),
        ),
    )


class PostgresLedger:
    """The `Ledger` in a PostgreSQL database, at a libpq URL (`postgresql://user@host/db`).

    `schema` puts the tables in that schema (created if missing; lower-case
    letters, digits and `_`), else they go where the connection's search_path
    says. `min_size`/`max_size` size the connection pool; `connect_timeout` is
    how long (seconds) `open()` waits for its first connection.

    Every transition also appends a line to the audit trail, in the same
    transaction.

    Raises:
        ConfigurationError: psycopg is not installed, the URL is malformed or
            the schema name is not a plain identifier.
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10.0,
    ) -> None:
        try:
            # `import psycopg.conninfo` (not `from … import`) goes through the top-level package.
            import psycopg.conninfo
            import psycopg_pool  # noqa: F401 (checked for here; open() uses it)
        except ImportError as exc:
            raise ConfigurationError(INSTALL_HINT) from exc
        try:
            params = psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.Error:
            # psycopg's message quotes the URL, password included: say less.
            raise ConfigurationError("the PostgreSQL ledger URL is malformed") from None
        if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
            raise ConfigurationError(
                f"PostgreSQL schema {schema!r} must be lower-case letters, digits and _ (at most 63)"
            )
        self.schema = schema
        self._url = url
        self._where = f"PostgreSQL ledger {params.get('host', 'localhost')}/{params.get('dbname', '')}"
        if schema:
            self._where += f" schema {schema}"
        self._tables = Tables.with_prefix(f'"{schema}".' if schema else "")
        self._queries = Queries.render(self._tables, "%s")
        # The request and its audit line in one statement, so one round trip.
        self._issue = (
            f"WITH issued AS ({self._queries.insert_request} RETURNING id)"
            f" INSERT INTO {self._tables.audit} (request_id, at, event, detail)"
            " SELECT id, %s::double precision, %s, %s FROM issued"
        )
        self._pool_sizes = (min_size, max_size)
        self._connect_timeout = connect_timeout
        self._pool: AsyncConnectionPool[Any] | None = None

    def __repr__(self) -> str:
        return f"PostgresLedger(<{self._where}>)"

    # -- lifecycle -----------------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, and create or migrate the tables; idempotent, safe from many processes at once.

        Raises:
            LedgerError: the server is unreachable within `connect_timeout`, or
                the schema was migrated by a newer x402-mcp.
        """
        if self._pool is not None:
            return
        from psycopg_pool import AsyncConnectionPool

        min_size, max_size = self._pool_sizes
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            self._url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True},
            open=False,
            name="x402-mcp-ledger",
        )
        try:
            with self._translate():
                await pool.open(wait=True, timeout=self._connect_timeout)
                async with pool.connection() as conn:
                    await self._migrate(conn)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        """Close the pool, waiting for connections in use to come back; idempotent."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    # -- the Ledger protocol -------------------------------------------------------------------------

    async def issue(self, request: PaymentRequest, *, max_open: int | None = None) -> None:
        """Store a newly minted request and note it in the audit trail; with `max_open`,
        only while its caller holds fewer open requests.

        The cap is counted in a transaction that first takes an advisory lock on
        the caller, so issues for one caller, from any replica, count one after
        another (under READ COMMITTED each statement sees what the previous
        holder committed).

        Raises:
            TooManyOpenRequests: the caller is at `max_open` (nothing is written).
            LedgerError: the id is taken, the request is not `issued`, or its
                price is not a whole number of atomic units below 2**256.
        """
        from psycopg.errors import UniqueViolation

        values = request_values(request, amount=int)
        params = [*values, request.created_at, "issue", issue_detail(request)]
        async with self._connection() as conn:
            try:
                if max_open is None:
                    await conn.execute(self._issue, params)
                    return
                async with conn.transaction():
                    # The empty string stands for "no identity": no caller id is ever empty.
                    await conn.execute(
                        "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_ISSUE_LOCK, request.caller or ""]
                    )
                    sql, counted = count_open_sql(self._tables, "%s", request.caller, Owner.of(request))
                    cursor = await conn.execute(sql, [*counted, request.created_at])
                    row = await cursor.fetchone()
                    held = 0 if row is None else int(row[0])
                    if held >= max_open:
                        raise cap_reached(request.caller, held, max_open)
                    await conn.execute(self._issue, params)
            except UniqueViolation as exc:
                raise LedgerError(f"payment request {request.id} already exists") from exc

    async def claim_payment(self, key: PaymentKey, request_id: str, *, now: float) -> str:
        """Bind `key` to `request_id` unless it is bound already; return the request it is bound to.

        One statement inserts the claim or, when the key is taken, reads its owner.
        A claim committed by another transaction while this one waited on it is not
        in this statement's snapshot; the read that follows, a statement of its
        own, sees it.
        """
        q = self._queries
        where = [key.network, key.payer, key.nonce]
        sql = (
            f"WITH claimed AS ({q.claim_payment} RETURNING request_id)"
            f" SELECT request_id FROM claimed UNION ALL ({q.claim_owner}) LIMIT 1"
        )
        async with self._connection() as conn:
            cursor = await conn.execute(sql, [*where, request_id, now, *where])
            row = await cursor.fetchone()
            if row is None:
                cursor = await conn.execute(q.claim_owner, where)
                row = await cursor.fetchone()
        if row is None:
            raise LedgerError(f"{self._where}: the claim of a payment for {request_id} vanished")
        return str(row[0])

    async def renew_lease(
        self, request_id: str, claim_id: str | None, *, lease_until: float, now: float
    ) -> bool:
        """Extend the lease of the claim `claim_id` (None: of a settlement in progress);
        False when the request is no longer held so."""
        check_lease(lease_until, now)
        if not possible_id(request_id):
            return False
        sql, params = renew_sql(self._queries, request_id, claim_id, lease_until)
        async with self._connection() as conn:
            cursor = await conn.execute(sql, params)
            return cursor.rowcount == 1

    async def get(self, request_id: str, *, owner: Owner | None = None) -> PaymentRequest | None:
        """The request as it now stands, or None when there is no such id (or `owner` did not quote it)."""
        if not possible_id(request_id):
            return None
        row = await self._fetch_one(*get_sql(self._queries, request_id, owner))
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
        current: str | None = None
        async with self._connection() as conn:
            row = await self._compare_and_set(conn, request_id, change)
            if row is None:
                row, current = await self._refusal(conn, request_id, change)
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
        settled on, in one statement (one round trip); None (nothing written) when it is not
        claimable so (or not `owner`'s)."""
        change = plan_claim(now=now, lease_until=lease_until, claim_id=claim_id, owner=owner)
        if not possible_id(request_id):
            return None
        return await self._take(request_id, None, change, tool, price)

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
        """Claim the request `find_redeemable` would find, if it covers `price`, as `claim`
        does: one statement."""
        change = plan_claim(now=now, lease_until=lease_until, claim_id=claim_id, owner=owner)
        pick = redeemable_sql(self._queries, tool=tool, caller=caller, now=now, owner=owner, ids_only=True)
        return await self._take("", pick, change, tool, price)

    async def _take(
        self, request_id: str, pick: tuple[str, list[object]] | None, change: Change, tool: str, price: int
    ) -> Claim | None:
        t = self._tables
        update, params = update_sql(change, request_id, table=t.requests, param="%s", pick=pick)
        # The tool and price guard join the compare-and-set: under READ COMMITTED a claim that
        # waited for another one re-checks all of it against the row that one committed.
        update += " AND tool = %s AND price >= %s::numeric"
        params += [tool, price]
        sql = (
            f"WITH moved AS ({update} RETURNING {', '.join(COLUMNS)}),"
            f" logged AS (INSERT INTO {t.audit} (request_id, at, event, detail)"
            " SELECT id, %s::double precision, %s, %s FROM moved)"
            # The network of its latest settlement, as `settlements()` would list it last.
            f" SELECT moved.*, (SELECT network FROM {t.settlements} s WHERE s.request_id = moved.id"
            " ORDER BY s.settled_at DESC, s.tx_hash DESC LIMIT 1) FROM moved"
        )
        params += [change.now, change.event.value, change.detail]
        row = await self._fetch_one(sql, params)
        if row is None:
            return None
        *columns, network = row
        return Claim(request_from_row(columns), None if network is None else str(network))

    async def find_redeemable(
        self, *, tool: str, caller: str, now: float, owner: Owner | None = None
    ) -> PaymentRequest | None:
        """The oldest request of `caller` for `tool` (quoted by `owner`, when given) that is
        paid, or redeeming under a lapsed lease."""
        sql, params = redeemable_sql(
            self._queries, tool=tool, caller=caller, now=now, owner=owner, ids_only=False
        )
        row = await self._fetch_one(sql, params)
        return None if row is None else request_from_row(row)

    async def settlements(self, request_id: str | None = None) -> list[SettlementRecord]:
        """Recorded settlements, oldest first: all of them, or those of one request."""
        if request_id is None:
            rows = await self._fetch_all(self._queries.settlements, [])
        elif not possible_id(request_id):
            return []
        else:
            rows = await self._fetch_all(self._queries.settlements_of, [request_id])
        return [settlement_from_row(row) for row in rows]

    async def audit(self, request_id: str | None, event: str, detail: str, *, now: float) -> None:
        """Append one line to the audit trail (its detail bounded)."""
        stored_id, stored_event, stored_detail = audit_line(request_id, event, detail)
        async with self._connection() as conn:
            await conn.execute(self._queries.insert_audit, [stored_id, now, stored_event, stored_detail])

    async def audit_trail(self, request_id: str | None = None) -> list[tuple[float, str | None, str, str]]:
        """Audit lines `(at, request_id, event, detail)` in the order written: all, or one request's."""
        if request_id is None:
            rows = await self._fetch_all(self._queries.audit_trail, [])
        elif not possible_id(request_id):
            return []
        else:
            rows = await self._fetch_all(self._queries.audit_trail_of, [request_id])
        return [(at, rid, event, detail) for at, rid, event, detail in rows]

    async def requests(
        self, *, states: Collection[State] | None = None, limit: int = 100, owner: Owner | None = None
    ) -> list[PaymentRequest]:
        """Requests in any of `states` (all when None) of `owner` (any when None), newest first,
        at most `limit`."""
        sql, params = requests_sql(self._tables, "%s", states, limit, owner)
        return [request_from_row(row) for row in await self._fetch_all(sql, params)]

    async def count_open(self, *, caller: str | None, now: float, owner: Owner | None = None) -> int:
        """How many requests issued to `caller` (None: to callers without an identity)
        are still unpaid and unexpired at `now` (of `owner`, when given)."""
        sql, params = count_open_sql(self._tables, "%s", caller, owner)
        row = await self._fetch_one(sql, [*params, now])
        return 0 if row is None else int(row[0])

    async def purge_expired(self, *, before: float, owner: Owner | None = None) -> int:
        """Delete expired requests (of `owner`, when given) whose `expires_at` is before
        `before`, their audit lines and their payment claims, in one statement."""
        t = self._tables
        where, owned = expired_where("%s", owner)
        sql = (
            f"WITH gone AS (DELETE FROM {t.requests} WHERE {where} RETURNING id),"
            f" unlogged AS (DELETE FROM {t.audit} WHERE request_id IN (SELECT id FROM gone)),"
            f" unclaimed AS (DELETE FROM {t.claims} WHERE request_id IN (SELECT id FROM gone))"
            " SELECT count(*) FROM gone"
        )
        row = await self._fetch_one(sql, [State.EXPIRED.value, before, *owned])
        return 0 if row is None else int(row[0])

    async def purge_unattached_audit(self, *, before: float) -> int:
        """Delete audit lines of no request written before `before`."""
        return await self._run_counted(self._queries.purge_unattached_audit, before)

    async def clear_results(self, *, before: float, owner: Owner | None = None) -> int:
        """Forget the stored results of requests (of `owner`, when given) consumed before `before`."""
        if owner is None:
            return await self._run_counted(self._queries.clear_results, before)
        async with self._connection() as conn:
            cursor = await conn.execute(self._queries.clear_results_owned, [before, *owner.values()])
            return int(cursor.rowcount)

    async def expire_overdue(self, *, now: float, owner: Owner | None = None) -> list[str]:
        """Expire every issued request (of `owner`, when given) whose `expires_at` is at or
        before `now`; return their ids."""
        change = expiry(now, "overdue", owner)
        t = self._tables
        owned = "" if owner is None else f" AND {owned_clause('%s')}"
        sql = (
            f"WITH gone AS (UPDATE {t.requests} SET state = %s WHERE state = %s AND expires_at <= %s{owned}"
            " RETURNING id),"
            f" logged AS (INSERT INTO {t.audit} (request_id, at, event, detail)"
            " SELECT id, %s::double precision, %s, %s FROM gone)"
            " SELECT id FROM gone ORDER BY id"
        )
        params = [
            State.EXPIRED.value,
            State.ISSUED.value,
            now,
            *([] if owner is None else owner.values()),
            now,
            change.event.value,
            change.detail,
        ]
        return [request_id for (request_id,) in await self._fetch_all(sql, params)]

    # -- statements ----------------------------------------------------------------------------------

    async def _migrate(self, conn: AsyncConnection[Any]) -> None:
        t = self._tables
        async with conn.transaction():
            # Taken before anything else: even CREATE SCHEMA IF NOT EXISTS can fail when two run at once.
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATION_LOCK])
            if self.schema:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {t.migrations}"
                " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            cursor = await conn.execute(f"SELECT version FROM {t.migrations}")
            applied = [version for (version,) in await cursor.fetchall()]
            for migration in pending(_migrations(t), applied, where=self._where):
                for statement in migration.statements:
                    await conn.execute(statement)
                await conn.execute(
                    f"INSERT INTO {t.migrations} (version, name, applied_at) VALUES (%s, %s, %s)",
                    [migration.version, migration.name, time.time()],
                )

    async def _compare_and_set(
        self, conn: AsyncConnection[Any], request_id: str, change: Change
    ) -> tuple[Any, ...] | None:
        """Run `change` as one statement; the moved row, or None when the compare-and-set lost."""
        from psycopg.errors import UniqueViolation

        t = self._tables
        update, params = update_sql(change, request_id, table=t.requests, param="%s")
        parts = [f"moved AS ({update} RETURNING {', '.join(COLUMNS)})"]
        if (s := change.settlement) is not None:
            parts.append(
                f"recorded AS (INSERT INTO {t.settlements} (request_id, {SETTLEMENT_COLUMNS})"
                " SELECT id, %s, %s, %s::numeric, %s, %s, %s::double precision FROM moved)"
            )
            params += [s.tx_hash, s.payer, s.amount, s.asset, s.network, s.settled_at]
        parts.append(
            f"logged AS (INSERT INTO {t.audit} (request_id, at, event, detail)"
            " SELECT id, %s::double precision, %s, %s FROM moved)"
        )
        params += [change.now, change.event.value, change.detail]
        try:
            cursor = await conn.execute(f"WITH {', '.join(parts)} SELECT * FROM moved", params)
        except UniqueViolation as exc:
            if s is None:
                raise
            raise duplicate_settlement(s) from exc
        return await cursor.fetchone()

    async def _refusal(
        self, conn: AsyncConnection[Any], request_id: str, change: Change
    ) -> tuple[tuple[Any, ...] | None, str | None]:
        """After a lost compare-and-set: no row, and the state that refused it (None: no such request).

        Reads under FOR UPDATE, so the state reported is the one that refused
        the change, not one a concurrent transaction left a moment later. If the
        row became eligible in between, the change is applied after all and its
        row returned instead.
        """
        async with conn.transaction():
            # Another server's request is missing to this one: its state is not told.
            owned, params = "", []
            if change.owner is not None:
                owned, params = f" AND {owned_clause('%s')}", change.owner.values()
            cursor = await conn.execute(
                f"SELECT state, expires_at FROM {self._tables.requests} WHERE id = %s{owned} FOR UPDATE",
                [request_id, *params],
            )
            found = await cursor.fetchone()
            if found is None:
                return None, None
            row = await self._compare_and_set(conn, request_id, change)
            if row is not None:
                return row, None
            state, expires_at = found
            if expires_instead(change, state, expires_at):
                await self._compare_and_set(
                    conn, request_id, expiry(change.now, "settlement begun after expires_at", change.owner)
                )
                return None, State.EXPIRED.value
            return None, str(state)

    # -- plumbing ------------------------------------------------------------------------------------

    async def _run_counted(self, sql: str, before: float) -> int:
        async with self._connection() as conn:
            cursor = await conn.execute(sql, [before])
            return cursor.rowcount

    async def _fetch_one(self, sql: str, params: list[object]) -> tuple[Any, ...] | None:
        async with self._connection() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchone()

    async def _fetch_all(self, sql: str, params: list[object]) -> list[tuple[Any, ...]]:
        async with self._connection() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchall()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        if self._pool is None:
            raise LedgerError(f"{self!r} is not open; await ledger.open() first")
        with self._translate():
            async with self._pool.connection() as conn:
                yield conn

    @contextmanager
    def _translate(self) -> Iterator[None]:
        from psycopg import Error

        try:
            yield
        except Error as exc:
            raise LedgerError(f"{self._where}: {exc}") from exc

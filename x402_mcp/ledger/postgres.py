"""A ledger in PostgreSQL, shared by every replica of a server.

Connections: a psycopg 3 `AsyncConnectionPool` of autocommit connections. A
transition is one statement, so one transaction and one round trip: a
data-modifying CTE that runs the compare-and-set `UPDATE … RETURNING` and, only
for the row it moved, inserts the settlement and the audit line (the statements
are `SQLLedger`'s; this module runs them and says how PostgreSQL spells them). Under READ
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
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ..errors import ConfigurationError, LedgerError
from ._dialect import Dialect, Result, Script
from ._ledger import SQLLedger
from ._sql import Tables

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

T = TypeVar("T")

INSTALL_HINT = "PostgresLedger needs psycopg 3 and psycopg-pool: pip install 'mcp-x402[postgres]'"

# "x402mcp" in ASCII: the advisory lock every x402-mcp migrator takes, whatever its schema.
_MIGRATION_LOCK = 0x78343032_6D6370

# The first key of the two-key advisory locks that serialise issues per caller ("x4"; the
# one-key and two-key lock spaces never collide). The second is a hash of the caller.
_ISSUE_LOCK = 0x7834

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _dialect(schema: str | None) -> Dialect:
    """PostgreSQL's spelling, for the tables in `schema` (None: where search_path says)."""
    # Taken before anything else: even CREATE SCHEMA IF NOT EXISTS can fail when two run at once.
    prelude = [f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"]
    if schema:
        prelude.append(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    return Dialect(
        tables=Tables.with_prefix(f'"{schema}".' if schema else ""),
        param="%s",
        amount=int,
        # NUMERIC(78,0) holds every uint256.
        amount_column="NUMERIC(78, 0) NOT NULL CHECK ({column} >= 0)",
        time_type="DOUBLE PRECISION",
        audit_id="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        covers="price >= %s::numeric",
        one_statement_writes=True,
        returning=True,
        time_param="%s::double precision",
        amount_param="%s::numeric",
        # Under READ COMMITTED a plain SELECT sees a row that may change before the next statement.
        lock_rows=" FOR UPDATE",
        # Issues for one caller, from any replica, count one after another: under READ
        # COMMITTED each statement sees what the previous holder of the lock committed.
        caller_lock=f"SELECT pg_advisory_xact_lock({_ISSUE_LOCK}, hashtext(%s))",
        migration_prelude=tuple(prelude),
    )


async def _run_script(conn: AsyncConnection[Any], script: Script[T]) -> T:
    """Run `script` to its end on `conn`, one statement (one round trip) at a time."""
    from psycopg.errors import UniqueViolation

    statement = next(script)
    while True:
        try:
            cursor = await conn.execute(statement.sql, statement.params or None)
        except UniqueViolation as exc:
            if statement.duplicate is None:
                raise
            raise statement.duplicate() from exc
        # `rownumber` is None when the statement returned no rows to fetch (cheaper to ask than
        # `description`, which builds a column object for every column).
        rows = await cursor.fetchall() if cursor.rownumber is not None else []
        try:
            statement = script.send(Result(rows, cursor.rowcount))
        except StopIteration as finished:
            return cast(T, finished.value)


class PostgresLedger(SQLLedger):
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
        where = f"PostgreSQL ledger {params.get('host', 'localhost')}/{params.get('dbname', '')}"
        super().__init__(_dialect(schema), f"{where} schema {schema}" if schema else where)
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
                async with pool.connection() as conn, conn.transaction():
                    await _run_script(conn, self._migrate())
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        """Close the pool, waiting for connections in use to come back; idempotent."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _execute(
        self, script: Callable[[], Script[T]], *, write: bool, long: bool = False, atomic: bool = False
    ) -> T:
        # Autocommit: a single statement is a transaction of its own, with no BEGIN and COMMIT
        # round trips; only `atomic` scripts of several statements need one.
        async with self._connection() as conn:
            if not atomic:
                return await _run_script(conn, script())
            async with conn.transaction():
                return await _run_script(conn, script())

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

"""Fixtures for the ledger tests: the same contract, run on each backend.

`store` is where ledgers live: a SQLite file in the test's tmp directory, or a
fresh PostgreSQL schema (dropped afterwards) at `$X402_POSTGRES_URL`. When
PostgreSQL is unreachable its cases are skipped, unless
`X402_REQUIRE_POSTGRES=1`, which makes that a failure.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from x402_mcp.ledger import Ledger, PostgresLedger, SQLiteLedger
from x402_mcp.ledger import sqlite as sqlite_module

POSTGRES_URL = os.environ.get("X402_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

Rows = list[tuple[Any, ...]]


@dataclass(frozen=True)
class Store:
    """One place ledgers live.

    `ledger()` makes another (unopened) ledger on it; `query(sql)` runs raw SQL
    against it, for what the ledger API does not show (schema_migrations,
    column types).
    """

    kind: str
    ledger: Callable[[], Ledger]
    query: Callable[[str], Awaitable[Rows]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            pass
    except Exception as exc:
        reason = f"PostgreSQL is unreachable at $X402_POSTGRES_URL ({type(exc).__name__}: {exc})"
        if os.environ.get("X402_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return POSTGRES_URL


def sqlite_store(path: Path) -> Store:
    def run(sql: str) -> Rows:
        with sqlite3.connect(path) as conn:  # the with block commits
            return conn.execute(sql).fetchall()

    async def query(sql: str) -> Rows:
        return await anyio.to_thread.run_sync(run, sql)

    return Store("sqlite", lambda: SQLiteLedger(path), query)


def postgres_store(url: str, schema: str) -> Store:
    import psycopg

    async def query(sql: str) -> Rows:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(f'SET search_path TO "{schema}"')
            cursor = await conn.execute(sql)
            return [] if cursor.description is None else await cursor.fetchall()

    return Store("postgres", lambda: PostgresLedger(url, schema=schema), query)


@asynccontextmanager
async def fresh_schema(url: str) -> AsyncIterator[Store]:
    """A store in a new PostgreSQL schema of its own, dropped on the way out."""
    import psycopg

    schema = f"x402_test_{uuid.uuid4().hex[:16]}"
    try:
        yield postgres_store(url, schema)
    finally:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(
    params=["sqlite", "sqlite-without-returning", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite-without-returning":
        # As on SQLite before 3.35 (no RETURNING): moved rows are read back in the same transaction.
        monkeypatch = request.getfixturevalue("monkeypatch")
        monkeypatch.setattr(sqlite_module, "SQLITE", replace(sqlite_module.SQLITE, returning=False))
    if request.param.startswith("sqlite"):
        yield sqlite_store(tmp_path / "ledger.sqlite")
    else:
        async with fresh_schema(request.getfixturevalue("postgres_url")) as postgres:
            yield postgres


@pytest.fixture
async def pg_store(postgres_url: str) -> AsyncIterator[Store]:
    async with fresh_schema(postgres_url) as postgres:
        yield postgres


@pytest.fixture
async def ledger(store: Store) -> AsyncIterator[Ledger]:
    opened = store.ledger()
    await opened.open()
    yield opened
    await opened.close()

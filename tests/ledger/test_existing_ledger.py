"""A ledger written by an earlier x402-mcp opens, keeps its rows, migrates and goes on working.

The fixtures are a SQLite file and a `pg_dump` of a PostgreSQL schema, both written by
x402-mcp at commit 6a2d828 (ledger schema version 3, before the two backends shared one
`SQLLedger`), holding a request in every state, settlements, payment claims and an
unattached audit line. Neither is ever written in place: each test works on a copy.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from x402_mcp.core.states import Event, State, StateConflict, settler_presumed_gone
from x402_mcp.errors import LedgerError
from x402_mcp.gate.reconcile import awaiting_reconciliation
from x402_mcp.ledger import PaymentKey, SettlementRecord
from x402_mcp.ledger._migrations import ledger_migrations
from x402_mcp.ledger.sqlite import SQLITE

from .conftest import Rows, Store, fresh_schema, sqlite_store

VERSIONS = [migration.version for migration in ledger_migrations(SQLITE)]

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parent / "fixtures"
NOW = 1_700_001_000.0
FIXTURE_STATES = {
    "pr_issued": State.ISSUED,
    "pr_settling": State.SETTLING,
    "pr_paid": State.PAID,
    "pr_redeeming": State.REDEEMING,
    "pr_consumed": State.CONSUMED,
    "pr_expired": State.EXPIRED,
}


async def _load_dump(url: str, schema: str) -> None:
    import psycopg

    dump = (FIXTURES / "ledger-schema-3.postgres.sql").read_text()
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(dump.replace("x402_fixture", schema).encode())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def old(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A store holding the ledger x402-mcp 6a2d828 wrote."""
    if request.param == "sqlite":
        path = tmp_path / "ledger.sqlite"
        shutil.copyfile(FIXTURES / "ledger-schema-3.sqlite", path)
        yield sqlite_store(path)
        return
    async with fresh_schema(request.getfixturevalue("postgres_url")) as store:
        # The store's schema, not created yet: its search_path names it.
        schema = str((await store.query("SHOW search_path"))[0][0]).strip('"')
        await _load_dump(request.getfixturevalue("postgres_url"), schema)
        yield store


async def _schema(store: Store) -> list[tuple[object, ...]]:
    """What defines the schema: tables, columns, types, constraints and indexes, sorted."""
    if store.kind == "sqlite":
        rows: Rows = await store.query(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        )
        return sorted((kind, name, table, _folded(sql)) for kind, name, table, sql in rows)
    columns = await store.query(
        "SELECT table_name, column_name, data_type, numeric_precision, numeric_scale, is_nullable,"
        " is_identity, column_default FROM information_schema.columns WHERE table_schema = current_schema()"
    )
    constraints = await store.query(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE connamespace = current_schema()::regnamespace"
    )
    indexes = await store.query(
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
    )
    schema = (await store.query("SELECT current_schema()"))[0][0]
    found = [*columns, *constraints, *indexes]
    return sorted(tuple(str(value).replace(f"{schema}.", "") for value in row) for row in found)


async def _versions(store: Store) -> list[int]:
    return [int(v) for (v,) in await store.query("SELECT version FROM schema_migrations ORDER BY version")]


def _folded(sql: str | None) -> str:
    """DDL with its layout folded away (it is stored as typed)."""
    text = re.sub(r"\s+", " ", sql or "")
    return re.sub(r"\s*([(),])\s*", r"\1", text).strip()


async def _fresh_schema_of(
    store: Store, tmp_path: Path, postgres_url: str | None
) -> list[tuple[object, ...]]:
    """The schema a new ledger creates, in a new store of the same kind."""
    if store.kind == "sqlite":
        fresh = sqlite_store(tmp_path / f"fresh-{uuid.uuid4().hex}.sqlite")
        ledger = fresh.ledger()
        await ledger.open()
        await ledger.close()
        return await _schema(fresh)
    assert postgres_url is not None
    async with fresh_schema(postgres_url) as fresh:
        ledger = fresh.ledger()
        await ledger.open()
        await ledger.close()
        return await _schema(fresh)


@pytest.fixture
def pg_url(request: pytest.FixtureRequest, old: Store) -> str | None:
    return None if old.kind == "sqlite" else str(request.getfixturevalue("postgres_url"))


async def test_an_old_ledger_opens_with_every_row_as_it_was(old: Store) -> None:
    ledger = old.ledger()
    await ledger.open()
    try:
        stored = {request.id: request.state for request in await ledger.requests()}
        assert stored == FIXTURE_STATES
        consumed = await ledger.get("pr_consumed")
        assert consumed is not None and consumed.result == '{"content": "42"}' and consumed.price == 50_002
        assert [s.tx_hash for s in await ledger.settlements()] == ["0xtx0", "0xtx1", "0xtx2"]
        trail = await ledger.audit_trail()
        assert len(trail) == 18 and trail[-1][1:] == (None, "note", "unattached line")
        # The payment claimed by pr_paid stays claimed by it.
        key = PaymentKey("eip155:84532", "0xpayer", "0xnonce0")
        assert await ledger.claim_payment(key, "pr_issued", now=NOW) == "pr_paid"
    finally:
        await ledger.close()
    assert await _versions(old) == VERSIONS


async def test_a_settlement_in_progress_keeps_when_it_began_across_the_upgrade(old: Store) -> None:
    """Schema 4 stores `settling_since` on the row; a row settling at the upgrade takes the time
    of its latest begin_settlement audit line, so reconciliation waits out its grace as before."""
    ledger = old.ledger()
    await ledger.open()
    try:
        settling = await ledger.get("pr_settling")
        assert settling is not None and settling.settling_since == 1_700_000_010.0
        others = [await ledger.get(rid) for rid in FIXTURE_STATES if rid != "pr_settling"]
        assert all(request is not None and request.settling_since is None for request in others)
        # Its settling lease (until 1700000070) governs while it has one; without it, the grace
        # counts from when it began.
        assert await awaiting_reconciliation(ledger, now=1_700_000_070.0, grace_seconds=300) == []
        found = await awaiting_reconciliation(ledger, now=1_700_000_071.0, grace_seconds=300)
        assert [request.id for request in found] == ["pr_settling"]
        unleased = replace(settling, lease_until=None)
        assert not settler_presumed_gone(unleased, 1_700_000_310.0, 300)
        assert settler_presumed_gone(unleased, 1_700_000_311.0, 300)
    finally:
        await ledger.close()


async def test_an_old_ledger_goes_on_working(old: Store) -> None:
    ledger = old.ledger()
    await ledger.open()
    try:
        claim = await ledger.claim(
            "pr_paid", tool="answer", price=50_001, lease_until=NOW + 60, claim_id="c9", now=NOW
        )
        assert claim is not None and claim.network == "eip155:84532"
        consumed = await ledger.transition("pr_paid", Event.CONSUME, now=NOW, result="ok", claim_id="c9")
        assert consumed.state is State.CONSUMED
        # The lease of pr_redeeming (until 1700000110) lapsed long ago: its caller may take it over.
        again = await ledger.claim_redeemable(
            tool="answer", caller="session:a", price=1, lease_until=NOW + 60, claim_id="c10", now=NOW
        )
        assert again is not None and again.request.id == "pr_redeeming"
        settlement = SettlementRecord("0xtx0", "0xPayer", 50_004, "0xAsset", "eip155:84532", NOW)
        with pytest.raises(LedgerError, match="already recorded"):
            await ledger.transition("pr_settling", Event.SETTLED, now=NOW, settlement=settlement)
        with pytest.raises(StateConflict):
            await ledger.transition("pr_consumed", Event.RELEASE, now=NOW, claim_id="c1")
        assert await ledger.purge_expired(before=NOW) == 1
        assert await ledger.get("pr_expired") is None
    finally:
        await ledger.close()


async def test_a_fresh_ledger_has_the_schema_of_an_old_one(
    old: Store, tmp_path: Path, pg_url: str | None
) -> None:
    ledger = old.ledger()
    await ledger.open()
    await ledger.close()
    today = await _schema(old)
    assert len(today) > 10 and today == await _fresh_schema_of(old, tmp_path, pg_url)


async def test_a_version_1_ledger_migrates_to_the_schema_of_today(
    old: Store, tmp_path: Path, pg_url: str | None
) -> None:
    # Undo migrations 3 and 2 on the old ledger, as a ledger of version 1 was.
    for statement in (
        "DROP TABLE claimed_payments",
        "DROP INDEX audit_unattached",
        "DROP INDEX payment_requests_results",
        "DROP INDEX payment_requests_open",
        "DROP INDEX payment_requests_settling",
        "ALTER TABLE payment_requests DROP COLUMN claim_id",
        "DELETE FROM schema_migrations WHERE version > 1",
    ):
        await old.query(statement)
    ledger = old.ledger()
    await ledger.open()
    try:
        assert {request.id: request.state for request in await ledger.requests()} == FIXTURE_STATES
        key = PaymentKey("eip155:84532", "0xpayer", "0xnew")
        assert await ledger.claim_payment(key, "pr_issued", now=NOW) == "pr_issued"
    finally:
        await ledger.close()
    assert await _versions(old) == VERSIONS
    today = await _schema(old)
    assert len(today) > 10 and today == await _fresh_schema_of(old, tmp_path, pg_url)

"""What is particular to the PostgreSQL ledger: its driver, its URL, its column types."""

from __future__ import annotations

import subprocess
import sys

import pytest

from x402_mcp.errors import ConfigurationError, LedgerError
from x402_mcp.ledger import PostgresLedger

from .conftest import Store

pytestmark = pytest.mark.anyio


def test_importing_the_ledgers_does_not_import_psycopg() -> None:
    code = "import sys, x402_mcp.ledger; print('psycopg' in sys.modules, 'psycopg_pool' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.split() == ["False", "False"]


@pytest.mark.parametrize("missing", ["psycopg", "psycopg_pool"])
def test_without_psycopg_making_one_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # what `import` meets when the extra is not installed
    with pytest.raises(ConfigurationError, match=r"pip install 'mcp-x402\[postgres\]'"):
        PostgresLedger("postgresql://postgres@127.0.0.1/test")


def test_a_malformed_url_is_refused_without_echoing_its_password() -> None:
    with pytest.raises(ConfigurationError, match="malformed") as refused:
        PostgresLedger("postgresql://user:s3cret@[::1/db")
    assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize("schema", ["Upper", "1st", "has space", 'quo"te', "x" * 64, ""])
def test_a_schema_must_be_a_plain_identifier(schema: str) -> None:
    with pytest.raises(ConfigurationError, match="schema"):
        PostgresLedger("postgresql://postgres@127.0.0.1/test", schema=schema)


async def test_an_unreachable_server_fails_open_with_a_ledger_error() -> None:
    ledger = PostgresLedger("postgresql://postgres:s3cret@127.0.0.1:1/test", connect_timeout=0.5)
    with pytest.raises(LedgerError, match=r"127\.0\.0\.1/test") as failed:
        await ledger.open()
    assert "s3cret" not in str(failed.value)
    with pytest.raises(LedgerError, match="not open"):
        await ledger.get("pr_x")


@pytest.mark.postgres
async def test_amounts_are_numeric_78_0(pg_store: Store) -> None:
    store = pg_store
    ledger = store.ledger()
    await ledger.open()
    await ledger.close()
    rows = await store.query(
        "SELECT table_name, column_name, data_type, numeric_precision, numeric_scale"
        " FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND column_name IN ('price', 'amount') ORDER BY table_name"
    )
    assert rows == [
        ("channel_charges", "amount", "numeric", 78, 0),
        ("channel_claims", "amount", "numeric", 78, 0),
        ("payment_requests", "price", "numeric", 78, 0),
        ("settlements", "amount", "numeric", 78, 0),
    ]

"""`open_ledger`: which URL or path gives which ledger."""

from __future__ import annotations

from pathlib import Path

import pytest

from x402_mcp.errors import ConfigurationError
from x402_mcp.ledger import PostgresLedger, SQLiteLedger, open_ledger


@pytest.mark.parametrize(
    ("location", "path"),
    [
        ("sqlite:///var/lib/x402/ledger.sqlite", "/var/lib/x402/ledger.sqlite"),
        ("SQLite:///tmp/with%20space.sqlite", "/tmp/with space.sqlite"),
        ("sqlite:///:memory:", ":memory:"),
        ("sqlite://:memory:", ":memory:"),
        (":memory:", ":memory:"),
        ("ledger.sqlite", "ledger.sqlite"),
        ("/abs/ledger.sqlite", "/abs/ledger.sqlite"),
        (Path("/abs/p.sqlite"), "/abs/p.sqlite"),
    ],
)
def test_sqlite_locations(location: str | Path, path: str) -> None:
    ledger = open_ledger(location)
    assert isinstance(ledger, SQLiteLedger)
    assert ledger.path == path


@pytest.mark.parametrize(
    "url", ["postgresql://postgres@127.0.0.1:5432/test", "postgres://u:p@db.internal/x402"]
)
def test_postgres_urls(url: str) -> None:
    assert isinstance(open_ledger(url), PostgresLedger)


@pytest.mark.parametrize(
    ("location", "complaint"),
    [
        ("", "empty"),
        ("mysql://root:hunter2@db/x", "unsupported ledger URL scheme 'mysql'"),
        ("sqlite://relative/ledger.sqlite", "no absolute path"),
        ("sqlite://", "no absolute path"),
        ("sqlite:///", "no absolute path"),
        ("sqlite:///tmp/l.sqlite?mode=ro", "no options"),
    ],
)
def test_other_locations_are_configuration_errors(location: str, complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=complaint) as refused:
        open_ledger(location)
    assert "hunter2" not in str(refused.value)

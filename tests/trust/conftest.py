"""The trust tests run on both ledgers: `store` is a SQLite file or a fresh PostgreSQL schema."""

from __future__ import annotations

from ..ledger.conftest import postgres_url, store

__all__ = ["postgres_url", "store"]

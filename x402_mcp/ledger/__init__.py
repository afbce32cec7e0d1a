"""Ledgers: where payment requests, settlements and the audit trail live.

`open_ledger(url_or_path)` picks the backend: `SQLiteLedger` for a file (the
default, one machine), `PostgresLedger` for a database shared by replicas; both
are thin drivers under one `SQLLedger`, which holds the logic and the statements.
psycopg is imported only when a `PostgresLedger` is made, so the package works
without the `postgres` extra.
"""

from ._ledger import SQLLedger
from ._open import open_ledger
from .base import Claim, Ledger, PaymentKey, PaymentRequest, SettlementRecord
from .postgres import PostgresLedger
from .sqlite import SQLiteLedger

__all__ = [
    "Claim",
    "Ledger",
    "PaymentKey",
    "PaymentRequest",
    "PostgresLedger",
    "SQLLedger",
    "SQLiteLedger",
    "SettlementRecord",
    "open_ledger",
]

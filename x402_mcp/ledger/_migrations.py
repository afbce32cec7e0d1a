"""Versioned schema migrations, shared by both ledgers.

Each backend lists its own `Migration`s (the SQL differs by dialect) and
applies `pending()` ones in order inside one locked transaction at `open()`,
recording each version in `schema_migrations`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import LedgerError
from ._sql import Tables


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def bounded_state_statements(requests: str) -> tuple[str, ...]:
    """Version 2, the same in both dialects: the claim fencing token, and indexes for
    the per-caller cap on open requests and for finding settlements to reconcile."""
    return (
        f"ALTER TABLE {requests} ADD COLUMN claim_id TEXT",
        f"CREATE INDEX payment_requests_open ON {requests} (caller, expires_at) WHERE state = 'issued'",
        f"CREATE INDEX payment_requests_settling ON {requests} (lease_until) WHERE state = 'settling'",
    )


def claimed_payments_statements(t: Tables, *, time_type: str) -> tuple[str, ...]:
    """Version 3: the payments claimed by requests (one authorization or transaction pays
    for one request only), and indexes for purging unattached audit lines and old results.
    `time_type` is the dialect's floating-point column type."""
    return (
        f"""CREATE TABLE {t.claims} (
            network TEXT NOT NULL,
            payer TEXT NOT NULL,
            nonce TEXT NOT NULL,
            request_id TEXT NOT NULL,
            claimed_at {time_type} NOT NULL,
            PRIMARY KEY (network, payer, nonce)
        )""",
        f"CREATE INDEX claimed_payments_request ON {t.claims} (request_id)",
        f"CREATE INDEX audit_unattached ON {t.audit} (at) WHERE request_id IS NULL",
        f"CREATE INDEX payment_requests_results ON {t.requests} (consumed_at) WHERE result IS NOT NULL",
    )


def pending(migrations: Sequence[Migration], applied: Iterable[int], *, where: str) -> list[Migration]:
    """The migrations not yet in `applied`, in version order.

    Raises:
        LedgerError: the store was migrated by a newer x402-mcp (it has a version
            this one does not know), so writing to it could corrupt it.
    """
    done = set(applied)
    known = {migration.version for migration in migrations}
    newer = done - known
    if newer:
        raise LedgerError(
            f"{where} has ledger schema version {max(newer)}, newer than this x402-mcp knows"
            f" ({max(known)}); upgrade x402-mcp"
        )
    return sorted((m for m in migrations if m.version not in done), key=lambda m: m.version)

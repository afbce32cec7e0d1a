"""Versioned schema migrations, shared by both ledgers.

Each backend lists its own `Migration`s (the SQL differs by dialect) and
applies `pending()` ones in order inside one locked transaction at `open()`,
recording each version in `schema_migrations`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import LedgerError


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

"""Versioned schema migrations: the one schema both ledgers keep, in a dialect's types.

`SQLLedger` applies the `pending()` ones in order inside one locked transaction at
`open()`, recording each version in `schema_migrations`. A migration, once released,
never changes: a ledger made by an older x402-mcp is brought up to date by the later ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.states import Event, State
from ..errors import LedgerError

if TYPE_CHECKING:
    from ._dialect import Dialect


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def ledger_migrations(d: Dialect) -> tuple[Migration, ...]:
    """Every migration of the ledger schema, rendered for `d`."""
    t, time = d.tables, d.time_type
    states = ", ".join(f"'{state.value}'" for state in State)
    price, amount = d.amount_column.format(column="price"), d.amount_column.format(column="amount")
    created = (
        f"""CREATE TABLE {t.requests} (
            id TEXT PRIMARY KEY,
            tool TEXT NOT NULL,
            price {price},
            asset TEXT NOT NULL,
            network TEXT NOT NULL,
            pay_to TEXT NOT NULL,
            caller TEXT,
            created_at {time} NOT NULL,
            expires_at {time} NOT NULL,
            max_timeout_seconds INTEGER NOT NULL,
            state TEXT NOT NULL CHECK (state IN ({states})),
            description TEXT NOT NULL,
            payload TEXT,
            tx_hash TEXT,
            payer TEXT,
            paid_at {time},
            lease_until {time},
            consumed_at {time},
            result TEXT
        )""",
        f"CREATE INDEX payment_requests_redeemable ON {t.requests} (tool, caller, state, created_at)",
        f"CREATE INDEX payment_requests_expiry ON {t.requests} (expires_at) WHERE state = 'issued'",
        f"""CREATE TABLE {t.settlements} (
            network TEXT NOT NULL,
            tx_hash TEXT NOT NULL,
            request_id TEXT NOT NULL REFERENCES {t.requests} (id),
            payer TEXT NOT NULL,
            amount {amount},
            asset TEXT NOT NULL,
            settled_at {time} NOT NULL,
            PRIMARY KEY (network, tx_hash)
        )""",
        f"CREATE INDEX settlements_request ON {t.settlements} (request_id)",
        f"""CREATE TABLE {t.audit} (
            id {d.audit_id},
            request_id TEXT,
            at {time} NOT NULL,
            event TEXT NOT NULL,
            detail TEXT NOT NULL
        )""",
        f"CREATE INDEX audit_request ON {t.audit} (request_id, id)",
    )
    # The claim fencing token, and indexes for the per-caller cap on open requests and for
    # finding settlements to reconcile.
    bounded = (
        f"ALTER TABLE {t.requests} ADD COLUMN claim_id TEXT",
        f"CREATE INDEX payment_requests_open ON {t.requests} (caller, expires_at) WHERE state = 'issued'",
        f"CREATE INDEX payment_requests_settling ON {t.requests} (lease_until) WHERE state = 'settling'",
    )
    # The payments claimed by requests (one authorization or transaction pays for one request
    # only), and indexes for purging unattached audit lines and old results.
    claimed = (
        f"""CREATE TABLE {t.claims} (
            network TEXT NOT NULL,
            payer TEXT NOT NULL,
            nonce TEXT NOT NULL,
            request_id TEXT NOT NULL,
            claimed_at {time} NOT NULL,
            PRIMARY KEY (network, payer, nonce)
        )""",
        f"CREATE INDEX claimed_payments_request ON {t.claims} (request_id)",
        f"CREATE INDEX audit_unattached ON {t.audit} (at) WHERE request_id IS NULL",
        f"CREATE INDEX payment_requests_results ON {t.requests} (consumed_at) WHERE result IS NOT NULL",
    )
    # When each settlement in progress began, on its row: reconciliation reads it in the one
    # query that lists settling requests. Rows settling at the upgrade take the time of their
    # latest begin_settlement audit line (none found: presumed gone, as before).
    settling_since = (
        f"ALTER TABLE {t.requests} ADD COLUMN settling_since {time}",
        f"""UPDATE {t.requests} SET settling_since = (
            SELECT max(a.at) FROM {t.audit} a
            WHERE a.request_id = {t.requests}.id AND a.event = '{Event.BEGIN_SETTLEMENT.value}'
        ) WHERE state = '{State.SETTLING.value}'""",
    )
    return (
        Migration(1, "payment requests, settlements, audit", created),
        Migration(2, "claim fencing token; open and settling indexes", bounded),
        Migration(3, "claimed payments; unattached audit and stored result indexes", claimed),
        Migration(4, "settling_since: when a settlement in progress began", settling_since),
        Migration(5, "batch-settlement channels, charges, claims and sweeps", _channels(d)),
    )


def _channels(d: Dialect) -> tuple[str, ...]:
    """Batch settlement: each channel with its latest voucher and on-chain mirror, its charges,
    and the claims and sweeps that collect them (a sweep's entries say up to which claimed
    total it settles each channel; a claim's carry the voucher it presents). `pay_to`,
    `network` and `asset` are the channel's receiver, network and token: its owner, as for
    requests."""
    t, time = d.tables, d.time_type

    def amount(column: str) -> str:
        return f"{column} {d.amount_column.format(column=column)}"

    return (
        f"""CREATE TABLE {t.channels} (
            channel_id TEXT PRIMARY KEY,
            network TEXT NOT NULL,
            pay_to TEXT NOT NULL,
            asset TEXT NOT NULL,
            payer TEXT NOT NULL,
            payer_authorizer TEXT NOT NULL,
            receiver_authorizer TEXT NOT NULL,
            withdraw_delay INTEGER NOT NULL,
            config TEXT NOT NULL,
            {amount("balance")},
            {amount("total_claimed")},
            withdraw_requested_at BIGINT NOT NULL,
            {amount("refund_nonce")},
            {amount("charged")},
            {amount("signed_max_claimable")},
            signature TEXT,
            {amount("settled")},
            synced_at {time},
            reservation TEXT,
            reserved_until {time},
            created_at {time} NOT NULL,
            updated_at {time} NOT NULL
        )""",
        f"CREATE INDEX channels_owner ON {t.channels} (pay_to, network, asset, updated_at)",
        f"CREATE INDEX channels_payer ON {t.channels} (payer)",
        f"""CREATE TABLE {t.charges} (
            id {d.audit_id},
            channel_id TEXT NOT NULL REFERENCES {t.channels} (channel_id),
            tool TEXT NOT NULL,
            {amount("amount")},
            {amount("cumulative")},
            {amount("max_claimable")},
            signature TEXT NOT NULL,
            request_id TEXT,
            charged_at {time} NOT NULL
        )""",
        f"CREATE INDEX channel_charges_channel ON {t.charges} (channel_id, id)",
        f"""CREATE TABLE {t.channel_claims} (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('claim', 'sweep')),
            state TEXT NOT NULL CHECK (state IN ('submitted', 'confirmed', 'failed')),
            network TEXT NOT NULL,
            pay_to TEXT NOT NULL,
            asset TEXT NOT NULL,
            {amount("amount")},
            tx_hash TEXT,
            created_at {time} NOT NULL,
            updated_at {time} NOT NULL
        )""",
        f"CREATE INDEX channel_claims_owner ON {t.channel_claims} (pay_to, network, asset, created_at)",
        f"""CREATE TABLE {t.claim_entries} (
            claim_id TEXT NOT NULL REFERENCES {t.channel_claims} (id),
            channel_id TEXT NOT NULL REFERENCES {t.channels} (channel_id),
            {amount("max_claimable")},
            {amount("total_claimed")},
            signature TEXT,
            PRIMARY KEY (claim_id, channel_id)
        )""",
        f"CREATE INDEX channel_claim_entries_channel ON {t.claim_entries} (channel_id)",
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

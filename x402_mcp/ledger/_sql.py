"""The SQL both ledgers speak, rendered for a driver's placeholder and table names.

The two dialects differ in their DDL (see each backend's migrations) but not
in these statements, which are written once here so the backends stay in step.
Table names come from `Tables`, never from callers' data.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from ..lifecycle import State
from ._changes import COLUMNS, Change

SETTLEMENT_COLUMNS = "tx_hash, payer, amount, asset, network, settled_at"


@dataclass(frozen=True, slots=True)
class Tables:
    """The four table names, qualified by a schema prefix when there is one."""

    requests: str
    settlements: str
    audit: str
    migrations: str

    @classmethod
    def with_prefix(cls, prefix: str = "") -> Tables:
        return cls(
            f"{prefix}payment_requests",
            f"{prefix}settlements",
            f"{prefix}audit",
            f"{prefix}schema_migrations",
        )


@dataclass(frozen=True, slots=True)
class Queries:
    """The statements both ledgers run as they are, but for `param`."""

    get: str
    redeemable: str
    settlements: str
    settlements_of: str
    audit_trail: str
    audit_trail_of: str
    insert_request: str
    insert_audit: str

    @classmethod
    def render(cls, tables: Tables, param: str) -> Queries:
        select = f"SELECT {', '.join(COLUMNS)} FROM {tables.requests}"
        settlements = f"SELECT {SETTLEMENT_COLUMNS} FROM {tables.settlements}"
        audit = f"SELECT at, request_id, event, detail FROM {tables.audit}"
        return cls(
            get=f"{select} WHERE id = {param}",
            # Oldest first, so a caller holding several paid requests spends them in the order bought.
            redeemable=(
                f"{select} WHERE tool = {param} AND caller = {param}"
                f" AND (state = '{State.PAID.value}'"
                f" OR (state = '{State.REDEEMING.value}' AND lease_until < {param}))"
                " ORDER BY created_at, id LIMIT 1"
            ),
            settlements=f"{settlements} ORDER BY settled_at, tx_hash",
            settlements_of=f"{settlements} WHERE request_id = {param} ORDER BY settled_at, tx_hash",
            audit_trail=f"{audit} ORDER BY id",
            audit_trail_of=f"{audit} WHERE request_id = {param} ORDER BY id",
            insert_request=(
                f"INSERT INTO {tables.requests} ({', '.join(COLUMNS)})"
                f" VALUES ({', '.join([param] * len(COLUMNS))})"
            ),
            insert_audit=(
                f"INSERT INTO {tables.audit} (request_id, at, event, detail)"
                f" VALUES ({param}, {param}, {param}, {param})"
            ),
        )


def update_sql(change: Change, request_id: str, *, table: str, param: str) -> tuple[str, list[object]]:
    """`UPDATE … WHERE id = ? AND state IN (…)`, the compare-and-set, and its parameters.

    Zero rows updated means the compare-and-set lost: the row is missing or in
    a state the event does not start from. (No RETURNING here: SQLite has it
    only since 3.35, so the SQLite ledger reads the row back in the same
    transaction instead; PostgreSQL appends it.)
    """
    assignments = ", ".join(f"{column} = {param}" for column in ("state", *(c for c, _ in change.sets)))
    params: list[object] = [change.target.value, *(value for _, value in change.sets), request_id]
    allowed = f"state IN ({', '.join([param] * len(change.sources))})"
    params += [state.value for state in change.sources]
    if change.reclaims_lapsed_lease:
        # The run that held the lease died (or overran it): the request is redeemable again.
        allowed = f"({allowed} OR (state = {param} AND lease_until < {param}))"
        params += [State.REDEEMING.value, change.now]
    where = f"id = {param} AND {allowed}"
    if change.fence is not None:
        where += f" AND claim_id = {param}"
        params.append(change.fence)
    if change.requires_unexpired:
        where += f" AND expires_at > {param}"
        params.append(change.now)
    return f"UPDATE {table} SET {assignments} WHERE {where}", params


def requests_sql(
    tables: Tables, param: str, states: Collection[State] | None, limit: int
) -> tuple[str, list[object]]:
    """Requests in any of `states` (all when None), newest first, at most `limit`."""
    sql = f"SELECT {', '.join(COLUMNS)} FROM {tables.requests}"
    params: list[object] = []
    if states is not None:
        chosen = sorted(states)
        if not chosen:
            return f"{sql} WHERE 1 = 0", []
        sql += f" WHERE state IN ({', '.join([param] * len(chosen))})"
        params += [state.value for state in chosen]
    params.append(max(limit, 0))
    return f"{sql} ORDER BY created_at DESC, id DESC LIMIT {param}", params


def count_open_sql(tables: Tables, param: str) -> str:
    """Unpaid, unexpired requests of one caller (parameters: caller, now)."""
    return (
        f"SELECT count(*) FROM {tables.requests}"
        f" WHERE caller = {param} AND state = '{State.ISSUED.value}' AND expires_at > {param}"
    )

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
from .base import Owner

SETTLEMENT_COLUMNS = "tx_hash, payer, amount, asset, network, settled_at"


@dataclass(frozen=True, slots=True)
class Tables:
    """The table names, qualified by a schema prefix when there is one."""

    requests: str
    settlements: str
    audit: str
    migrations: str
    claims: str

    @classmethod
    def with_prefix(cls, prefix: str = "") -> Tables:
        return cls(
            f"{prefix}payment_requests",
            f"{prefix}settlements",
            f"{prefix}audit",
            f"{prefix}schema_migrations",
            f"{prefix}claimed_payments",
        )


@dataclass(frozen=True, slots=True)
class Queries:
    """The statements both ledgers run as they are, but for `param`."""

    get: str
    get_owned: str
    redeemable: str
    redeemable_id: str
    redeemable_owned: str
    redeemable_owned_id: str
    settlements: str
    settlements_of: str
    settled_network: str
    audit_trail: str
    audit_trail_of: str
    insert_request: str
    insert_audit: str
    claim_payment: str
    claim_owner: str
    renew_lease: str
    renew_settling: str
    purge_unattached_audit: str
    clear_results: str
    clear_results_owned: str

    @classmethod
    def render(cls, tables: Tables, param: str) -> Queries:
        select = f"SELECT {', '.join(COLUMNS)} FROM {tables.requests}"
        settlements = f"SELECT {SETTLEMENT_COLUMNS} FROM {tables.settlements}"
        audit = f"SELECT at, request_id, event, detail FROM {tables.audit}"
        # Parameters: tool, caller, now (then the owner's, for the owned variant). Oldest first,
        # so a caller holding several paid requests spends them in the order bought.
        redeemable = (
            f" FROM {tables.requests} WHERE tool = {param} AND caller = {param}"
            f" AND (state = '{State.PAID.value}'"
            f" OR (state = '{State.REDEEMING.value}' AND lease_until < {param}))"
        )
        oldest = " ORDER BY created_at, id LIMIT 1"
        owned = f" AND {owned_clause(param)}"
        return cls(
            get=f"{select} WHERE id = {param}",
            get_owned=f"{select} WHERE id = {param}{owned}",
            redeemable=f"SELECT {', '.join(COLUMNS)}{redeemable}{oldest}",
            redeemable_id=f"SELECT id{redeemable}{oldest}",
            redeemable_owned=f"SELECT {', '.join(COLUMNS)}{redeemable}{owned}{oldest}",
            redeemable_owned_id=f"SELECT id{redeemable}{owned}{oldest}",
            settlements=f"{settlements} ORDER BY settled_at, tx_hash",
            settlements_of=f"{settlements} WHERE request_id = {param} ORDER BY settled_at, tx_hash",
            # The last of `settlements_of`: where the payment that a receipt names was settled.
            settled_network=(
                f"SELECT network FROM {tables.settlements} WHERE request_id = {param}"
                " ORDER BY settled_at DESC, tx_hash DESC LIMIT 1"
            ),
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
            # Parameters: network, payer, nonce, request_id, claimed_at. The primary key makes
            # the first claim win; a later one changes nothing and reads the owner back.
            claim_payment=(
                f"INSERT INTO {tables.claims} (network, payer, nonce, request_id, claimed_at)"
                f" VALUES ({param}, {param}, {param}, {param}, {param})"
                " ON CONFLICT (network, payer, nonce) DO NOTHING"
            ),
            claim_owner=(
                f"SELECT request_id FROM {tables.claims}"
                f" WHERE network = {param} AND payer = {param} AND nonce = {param}"
            ),
            # Parameters: lease_until, id, claim_id. Fenced: only the claim that holds the run renews it.
            renew_lease=(
                f"UPDATE {tables.requests} SET lease_until = {param}"
                f" WHERE id = {param} AND state = '{State.REDEEMING.value}' AND claim_id = {param}"
            ),
            # Parameters: lease_until, id. A settler's lease, renewed while a spec-order tool runs.
            renew_settling=(
                f"UPDATE {tables.requests} SET lease_until = {param}"
                f" WHERE id = {param} AND state = '{State.SETTLING.value}'"
            ),
            purge_unattached_audit=f"DELETE FROM {tables.audit} WHERE request_id IS NULL AND at < {param}",
            clear_results=(
                f"UPDATE {tables.requests} SET result = NULL"
                f" WHERE result IS NOT NULL AND state = '{State.CONSUMED.value}' AND consumed_at < {param}"
            ),
            clear_results_owned=(
                f"UPDATE {tables.requests} SET result = NULL"
                f" WHERE result IS NOT NULL AND state = '{State.CONSUMED.value}' AND consumed_at < {param}"
                f"{owned}"
            ),
        )


def owned_clause(param: str) -> str:
    """The condition that a request row belongs to an `Owner` (parameters: `Owner.values()`)."""
    return f"pay_to = {param} AND network = {param} AND asset = {param}"


def get_sql(queries: Queries, request_id: str, owner: Owner | None) -> tuple[str, list[object]]:
    """The read of one request: any server's (owner None) or only `owner`'s."""
    if owner is None:
        return queries.get, [request_id]
    return queries.get_owned, [request_id, *owner.values()]


def redeemable_sql(
    queries: Queries, *, tool: str, caller: str, now: float, owner: Owner | None, ids_only: bool
) -> tuple[str, list[object]]:
    """The oldest redeemable request of `caller` for `tool`: any server's, or only `owner`'s
    (so a foreign row never hides the caller's own from `claim_redeemable`)."""
    params: list[object] = [tool, caller, now]
    if owner is None:
        return (queries.redeemable_id if ids_only else queries.redeemable), params
    sql = queries.redeemable_owned_id if ids_only else queries.redeemable_owned
    return sql, [*params, *owner.values()]


def update_sql(
    change: Change,
    request_id: str,
    *,
    table: str,
    param: str,
    pick: tuple[str, list[object]] | None = None,
) -> tuple[str, list[object]]:
    """`UPDATE … WHERE id = ? AND state IN (…)`, the compare-and-set, and its parameters.

    Zero rows updated means the compare-and-set lost: the row is missing or in
    a state the event does not start from. (No RETURNING here: SQLite has it
    only since 3.35, so the SQLite ledger reads the row back in the same
    transaction instead; PostgreSQL appends it.) `pick`, a query of one id and its
    parameters, names the row instead of `request_id`: the compare-and-set still
    guards whichever row it picks.
    """
    assignments = ", ".join(f"{column} = {param}" for column in ("state", *(c for c, _ in change.sets)))
    params: list[object] = [change.target.value, *(value for _, value in change.sets)]
    if pick is None:
        target = param
        params.append(request_id)
    else:
        target = f"({pick[0]})"
        params += pick[1]
    allowed = f"state IN ({', '.join([param] * len(change.sources))})"
    params += [state.value for state in change.sources]
    if change.reclaims_lapsed_lease:
        # The run that held the lease died (or overran it): the request is redeemable again.
        allowed = f"({allowed} OR (state = {param} AND lease_until < {param}))"
        params += [State.REDEEMING.value, change.now]
    where = f"id = {target} AND {allowed}"
    if change.fence is not None:
        where += f" AND claim_id = {param}"
        params.append(change.fence)
    if change.requires_unexpired:
        where += f" AND expires_at > {param}"
        params.append(change.now)
    if change.owner is not None:
        # Another server's request sharing this ledger is never moved: it is as if missing.
        where += f" AND {owned_clause(param)}"
        params += change.owner.values()
    return f"UPDATE {table} SET {assignments} WHERE {where}", params


def requests_sql(
    tables: Tables, param: str, states: Collection[State] | None, limit: int, owner: Owner | None = None
) -> tuple[str, list[object]]:
    """Requests in any of `states` (all when None) of `owner` (any when None), newest
    first, at most `limit`."""
    sql = f"SELECT {', '.join(COLUMNS)} FROM {tables.requests}"
    conditions: list[str] = []
    params: list[object] = []
    if states is not None:
        chosen = sorted(states)
        if not chosen:
            return f"{sql} WHERE 1 = 0", []
        conditions.append(f"state IN ({', '.join([param] * len(chosen))})")
        params += [state.value for state in chosen]
    if owner is not None:
        conditions.append(owned_clause(param))
        params += owner.values()
    if conditions:
        sql += f" WHERE {' AND '.join(conditions)}"
    params.append(max(limit, 0))
    return f"{sql} ORDER BY created_at DESC, id DESC LIMIT {param}", params


def renew_sql(
    queries: Queries, request_id: str, claim_id: str | None, lease_until: float
) -> tuple[str, list[object]]:
    """The lease renewal for a claim (fenced by `claim_id`) or, with None, for a settlement."""
    if claim_id is None:
        return queries.renew_settling, [lease_until, request_id]
    return queries.renew_lease, [lease_until, request_id, claim_id]


def count_open_sql(
    tables: Tables, param: str, caller: str | None, owner: Owner | None = None
) -> tuple[str, list[object]]:
    """Unpaid, unexpired requests of one caller, or of all callers without an identity
    (caller None), from `owner` (any when None), and the parameters but `now`, which comes last."""
    params: list[object] = [] if caller is None else [caller]
    who = "caller IS NULL" if caller is None else f"caller = {param}"
    if owner is not None:
        who += f" AND {owned_clause(param)}"
        params += owner.values()
    return (
        f"SELECT count(*) FROM {tables.requests}"
        f" WHERE {who} AND state = '{State.ISSUED.value}' AND expires_at > {param}",
        params,
    )


def expired_where(param: str, owner: Owner | None) -> tuple[str, list[object]]:
    """The WHERE of expired requests that may be purged (parameters: the expired state,
    before, then the owner's): of `owner` only, when given, so a server sharing the ledger
    never deletes another's requests on its own retention."""
    where = f"state = {param} AND expires_at < {param}"
    if owner is None:
        return where, []
    return f"{where} AND {owned_clause(param)}", owner.values()


def purge_expired_sql(tables: Tables, param: str, owner: Owner | None = None) -> tuple[str, str, str]:
    """The statements that delete, before expired requests go, their audit lines and
    payment claims, then the requests (parameters of each: the expired state, before, and
    `expired_where`'s). SQLite runs them in its write transaction; PostgreSQL folds the same
    deletes into one statement."""
    where, _ = expired_where(param, owner)
    gone = f"SELECT id FROM {tables.requests} WHERE {where}"
    return (
        f"DELETE FROM {tables.audit} WHERE request_id IN ({gone})",
        f"DELETE FROM {tables.claims} WHERE request_id IN ({gone})",
        f"DELETE FROM {tables.requests} WHERE {where}",
    )

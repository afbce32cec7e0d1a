"""The SQL of the ledger, rendered for a driver's placeholder and table names.

Every statement is written once here; a method gives it with its parameters.
Table names come from `Tables`, never from callers' data. Every read or write
of requests that takes an `owner` confines itself to that server's rows
(`owned`), so a foreign row is as if missing.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from ..core.states import LEASED, State
from ._changes import COLUMNS, Change
from .base import Owner

SETTLEMENT_COLUMNS = "tx_hash, payer, amount, asset, network, settled_at"

Params = list[object]


@dataclass(frozen=True, slots=True)
class Tables:
    """The table names, qualified by a schema prefix when there is one."""

    requests: str
    settlements: str
    audit: str
    migrations: str
    claims: str
    channels: str
    charges: str
    channel_claims: str
    claim_entries: str

    @classmethod
    def with_prefix(cls, prefix: str = "") -> Tables:
        names = (
            "payment_requests",
            "settlements",
            "audit",
            "schema_migrations",
            "claimed_payments",
            "channels",
            "channel_charges",
            "channel_claims",
            "channel_claim_entries",
        )
        return cls(*(f"{prefix}{name}" for name in names))


def lapsed_lease(now: str) -> str:
    """`states.lease_lapsed` of a leased row, in SQL (`now`: its placeholder): the holder's
    lease ran out before now, so the request may be claimed again."""
    return f"(state = '{LEASED.value}' AND lease_until < {now})"


class Queries:
    """The statements of the ledger over `tables`, with `param` as the placeholder."""

    def __init__(self, tables: Tables, param: str) -> None:
        p = self.param = param
        t = self.tables = tables
        self.select = f"SELECT {', '.join(COLUMNS)} FROM {t.requests}"
        settlements = f"SELECT {SETTLEMENT_COLUMNS} FROM {t.settlements}"
        self.settlements = f"{settlements} ORDER BY settled_at, tx_hash"
        self.settlements_of = f"{settlements} WHERE request_id = {p} ORDER BY settled_at, tx_hash"
        audit = f"SELECT at, request_id, event, detail FROM {t.audit}"
        self.audit_trail = f"{audit} ORDER BY id"
        self.audit_trail_of = f"{audit} WHERE request_id = {p} ORDER BY id"
        self.insert_request = (
            f"INSERT INTO {t.requests} ({', '.join(COLUMNS)}) VALUES ({', '.join([p] * len(COLUMNS))})"
        )
        self.insert_audit = (
            f"INSERT INTO {t.audit} (request_id, at, event, detail) VALUES ({p}, {p}, {p}, {p})"
        )
        self.insert_settlement = (
            f"INSERT INTO {t.settlements} (request_id, {SETTLEMENT_COLUMNS}) VALUES ({', '.join([p] * 7)})"
        )
        # Parameters: network, payer, nonce, request_id, claimed_at. The primary key makes
        # the first claim win; a later one changes nothing and reads the owner back.
        self.claim_payment = (
            f"INSERT INTO {t.claims} (network, payer, nonce, request_id, claimed_at)"
            f" VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (network, payer, nonce) DO NOTHING"
        )
        self.claim_owner = (
            f"SELECT request_id FROM {t.claims} WHERE network = {p} AND payer = {p} AND nonce = {p}"
        )
        self.purge_unattached_audit = f"DELETE FROM {t.audit} WHERE request_id IS NULL AND at < {p}"
        self.expired = f"state = '{State.EXPIRED.value}' AND expires_at < {p}"

    def owned(self, owner: Owner | None, params: Params) -> str:
        """The condition that a row is `owner`'s (nothing when None), its values added to `params`."""
        if owner is None:
            return ""
        params += owner.values()
        p = self.param
        return f" AND pay_to = {p} AND network = {p} AND asset = {p}"

    def get(self, request_id: str, owner: Owner | None) -> tuple[str, Params]:
        """The read of one request: any server's (owner None) or only `owner`'s."""
        params: Params = [request_id]
        return f"{self.select} WHERE id = {self.param}{self.owned(owner, params)}", params

    def redeemable(
        self, *, tool: str, caller: str, now: float, owner: Owner | None, ids_only: bool
    ) -> tuple[str, Params]:
        """The oldest redeemable request of `caller` for `tool`: any server's, or only `owner`'s
        (so a foreign row never hides the caller's own from `claim_redeemable`). Oldest first,
        so a caller holding several paid requests spends them in the order bought."""
        p, params = self.param, [tool, caller, now]
        return (
            f"SELECT {'id' if ids_only else ', '.join(COLUMNS)} FROM {self.tables.requests}"
            f" WHERE tool = {p} AND caller = {p} AND (state = '{State.PAID.value}'"
            f" OR {lapsed_lease(p)}){self.owned(owner, params)}"
            " ORDER BY created_at, id LIMIT 1"
        ), params

    def update(
        self, change: Change, request_id: str, pick: tuple[str, Params] | None = None
    ) -> tuple[str, Params]:
        """`UPDATE … WHERE id = ? AND state IN (…)`, the compare-and-set, and its parameters.

        Zero rows updated means the compare-and-set lost: the row is missing or in a state
        the event does not start from. `pick`, a query of one id and its parameters, names
        the row instead of `request_id`: the compare-and-set still guards whichever row it picks.
        """
        p = self.param
        assignments = ", ".join(f"{column} = {p}" for column in ("state", *(c for c, _ in change.sets)))
        params: Params = [change.target.value, *(value for _, value in change.sets)]
        target = p if pick is None else f"({pick[0]})"
        params += [request_id] if pick is None else pick[1]
        allowed = f"state IN ({', '.join([p] * len(change.sources))})"
        params += [state.value for state in change.sources]
        if change.reclaims_lapsed_lease:
            # The run that held the lease died (or overran it): the request is redeemable again.
            allowed = f"({allowed} OR {lapsed_lease(p)})"
            params.append(change.now)
        where = f"id = {target} AND {allowed}"
        if change.fence is not None:
            where += f" AND claim_id = {p}"
            params.append(change.fence)
        if change.requires_unexpired:
            where += f" AND expires_at > {p}"
            params.append(change.now)
        # Another server's request sharing this ledger is never moved: it is as if missing.
        where += self.owned(change.owner, params)
        return f"UPDATE {self.tables.requests} SET {assignments} WHERE {where}", params

    def requests(
        self, states: Collection[State] | None, limit: int, owner: Owner | None
    ) -> tuple[str, Params]:
        """Requests in any of `states` (all when None) of `owner` (any when None), newest
        first, at most `limit`."""
        p, params, where = self.param, list[object](), "1 = 1"
        if states is not None:
            chosen = sorted(states)
            where = f"state IN ({', '.join([p] * len(chosen))})" if chosen else "1 = 0"
            params += [state.value for state in chosen]
        where += self.owned(owner, params)
        params.append(max(limit, 0))
        return f"{self.select} WHERE {where} ORDER BY created_at DESC, id DESC LIMIT {p}", params

    def renew(self, request_id: str, claim_id: str | None, lease_until: float) -> tuple[str, Params]:
        """The lease renewal for a claim (fenced: only the claim that holds the run renews it) or,
        with None, for a settler's lease, renewed while a spec-order tool runs."""
        p = self.param
        sql = f"UPDATE {self.tables.requests} SET lease_until = {p} WHERE id = {p} AND state = "
        if claim_id is None:
            return f"{sql}'{State.SETTLING.value}'", [lease_until, request_id]
        return f"{sql}'{State.REDEEMING.value}' AND claim_id = {p}", [lease_until, request_id, claim_id]

    def count_open(self, caller: str | None, now: float, owner: Owner | None) -> tuple[str, Params]:
        """Unpaid, unexpired requests of one caller, or of all callers without an identity
        (caller None), from `owner` (any when None)."""
        params: Params = [] if caller is None else [caller]
        who = "caller IS NULL" if caller is None else f"caller = {self.param}"
        who += self.owned(owner, params)
        params.append(now)
        return (
            f"SELECT count(*) FROM {self.tables.requests}"
            f" WHERE {who} AND state = '{State.ISSUED.value}' AND expires_at > {self.param}",
            params,
        )

    def clear_results(self, before: float, owner: Owner | None) -> tuple[str, Params]:
        """Forget the stored results of requests (of `owner`, when given) consumed before `before`."""
        params: Params = [before]
        return (
            f"UPDATE {self.tables.requests} SET result = NULL WHERE result IS NOT NULL"
            f" AND state = '{State.CONSUMED.value}' AND consumed_at < {self.param}{self.owned(owner, params)}"
        ), params


CHANNEL_COLUMNS = (
    "channel_id",
    "network",
    "pay_to",
    "asset",
    "payer",
    "payer_authorizer",
    "receiver_authorizer",
    "withdraw_delay",
    "config",
    "balance",
    "total_claimed",
    "withdraw_requested_at",
    "refund_nonce",
    "charged",
    "signed_max_claimable",
    "signature",
    "settled",
    "synced_at",
    "reservation",
    "reserved_until",
    "created_at",
    "updated_at",
)
CHARGE_COLUMNS = (
    "channel_id",
    "tool",
    "amount",
    "cumulative",
    "max_claimable",
    "signature",
    "charged_at",
    "request_id",
)


class ChannelQueries:
    """The statements of batch-settlement channels, their charges, claims and sweeps."""

    def __init__(self, tables: Tables, param: str) -> None:
        p, t = param, tables
        self.select = f"SELECT {', '.join(CHANNEL_COLUMNS)} FROM {t.channels} WHERE "
        self.insert = (
            f"INSERT INTO {t.channels} ({', '.join(CHANNEL_COLUMNS)})"
            f" VALUES ({', '.join([p] * len(CHANNEL_COLUMNS))}) ON CONFLICT (channel_id) DO NOTHING"
        )
        # What a reservation or a charge changes: charged, signed_max_claimable, signature,
        # reservation, reserved_until, updated_at; then the channel id.
        self.write_state = (
            f"UPDATE {t.channels} SET charged = {p}, signed_max_claimable = {p}, signature = {p},"
            f" reservation = {p}, reserved_until = {p}, updated_at = {p} WHERE channel_id = {p}"
        )
        # balance, total_claimed, withdraw_requested_at, refund_nonce, synced_at, updated_at; the id.
        self.sync = (
            f"UPDATE {t.channels} SET balance = {p}, total_claimed = {p}, withdraw_requested_at = {p},"
            f" refund_nonce = {p}, synced_at = {p}, updated_at = {p} WHERE channel_id = {p}"
        )
        self.release = (
            f"UPDATE {t.channels} SET reservation = NULL, reserved_until = NULL"
            f" WHERE channel_id = {p} AND reservation = {p}"
        )
        self.insert_charge = (
            f"INSERT INTO {t.charges} ({', '.join(CHARGE_COLUMNS)})"
            f" VALUES ({', '.join([p] * len(CHARGE_COLUMNS))})"
        )
        self.charges = (
            f"SELECT {', '.join(CHARGE_COLUMNS)} FROM {t.charges} WHERE channel_id = {p} ORDER BY id"
        )
        # id, kind, network, pay_to, asset, amount, created_at, updated_at.
        self.insert_collection = (
            f"INSERT INTO {t.channel_claims} (id, kind, state, network, pay_to, asset, amount, tx_hash,"
            f" created_at, updated_at) VALUES ({p}, {p}, 'submitted', {p}, {p}, {p}, {p}, NULL, {p}, {p})"
        )
        self.insert_entry = (
            f"INSERT INTO {t.claim_entries} (claim_id, channel_id, max_claimable, total_claimed, signature)"
            f" VALUES ({p}, {p}, {p}, {p}, {p})"
        )
        self.submitted_kind = f"SELECT kind FROM {t.channel_claims} WHERE id = {p} AND state = 'submitted'"
        self.finish = (
            f"UPDATE {t.channel_claims} SET state = {p}, tx_hash = {p}, updated_at = {p} WHERE id = {p}"
        )
        self.submitted = f"SELECT id, kind, amount FROM {t.channel_claims} WHERE state = 'submitted'"
        self.entries = (
            f"SELECT channel_id, max_claimable, total_claimed, signature FROM {t.claim_entries}"
            f" WHERE claim_id = {p} ORDER BY channel_id"
        )
        self._tables, self._param = t, p

    def reached(self, column: str) -> str:
        """A collection's entries beside their channels' `column` (total_claimed or settled)."""
        t, p = self._tables, self._param
        return (
            f"SELECT e.channel_id, e.total_claimed, c.{column} FROM {t.claim_entries} e"
            f" JOIN {t.channels} c ON c.channel_id = e.channel_id"
            f" WHERE e.claim_id = {p} ORDER BY e.channel_id"
        )

    def raise_total(self, column: str) -> str:
        """Set a channel's `column` (total_claimed or settled) and updated_at."""
        p = self._param
        return f"UPDATE {self._tables.channels} SET {column} = {p}, updated_at = {p} WHERE channel_id = {p}"

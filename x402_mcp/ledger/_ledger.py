"""The `Ledger` in SQL, written once for every database.

Each method works out its change (`_changes`), renders its statements (`_sql`,
in the driver's `Dialect`) and hands a script of them to `_execute`, which a
driver (`SQLiteLedger`, `PostgresLedger`) implements: the driver owns the
connections and transactions, never the logic. A script is a generator (see
`_dialect`), so a step that depends on what an earlier one found is written
here, once, and runs on a blocking sqlite3 connection and on an async psycopg
one alike.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import partial
from typing import Unpack

from ..core.states import Event, State, StateConflict
from ..errors import LedgerError
from ._changes import (
    ClaimTerms,
    EventArguments,
    audit_line,
    cap_reached,
    check_lease,
    claim_of,
    expiry,
    issue_detail,
    missing,
    plan_transition,
    possible_id,
    request_from_row,
    request_values,
    settlement_from_row,
)
from ._dialect import Result, Rows, Script, Statement
from ._scripts import single_statement
from .base import Claim, Owner, PaymentKey, PaymentRequest, SettlementRecord
from .channels import ChannelLedger


class SQLLedger(ChannelLedger):
    """The ledger's logic over a driver that runs its statements (see the module docstring).

    Every transition also appends a line to the audit trail, in the same transaction.
    Batch-settlement channels are kept beside the requests (`ChannelLedger`).
    """

    async def _run(
        self, sql: str, params: Sequence[object], *, write: bool = False, long: bool = False
    ) -> Result:
        return await self._execute(partial(single_statement, Statement(sql, params)), write=write, long=long)

    async def _every_or_of(self, every: str, of_one: str, request_id: str | None) -> Rows:
        """The rows of `every` (long), or of `of_one` for one request (none for an impossible id)."""
        if request_id is None:
            return (await self._run(every, [], long=True)).rows
        return (await self._run(of_one, [request_id])).rows if possible_id(request_id) else []

    # -- the Ledger protocol -------------------------------------------------------------------------

    async def issue(self, request: PaymentRequest, *, max_open: int | None = None) -> None:
        """See `Ledger.issue`: the request and its audit line; with `max_open`, counted in the
        same transaction, after the issues for that caller before it."""
        values = request_values(request, amount=self._d.amount)

        def script() -> Script[None]:
            if max_open is not None:
                if self._d.caller_lock is not None:
                    # The empty string stands for "no identity": no caller id is ever empty.
                    yield Statement(self._d.caller_lock, [request.caller or ""])
                counted = self._q.count_open(request.caller, request.created_at, Owner.of(request))
                held = int((yield Statement(*counted)).rows[0][0])
                if held >= max_open:
                    raise cap_reached(request.caller, held, max_open)
            taken = partial(LedgerError, f"payment request {request.id} already exists")
            insert = Statement(self._q.insert_request, values, taken)
            audit = [request.created_at, "issue", issue_detail(request)]
            yield from self._logged(insert, returning="id", key=request.id, audit=audit)

        await self._execute(script, write=True, atomic=max_open is not None)

    async def claim_payment(self, key: PaymentKey, request_id: str, *, now: float) -> str:
        """See `Ledger.claim_payment`. A claim committed by another transaction while this one
        waited on it may not be in the insert's snapshot; the read that follows, a statement of
        its own, sees it."""
        q, where = self._q, [key.network, key.payer, key.nonce]

        def script() -> Script[str]:
            rows: Rows = []
            if self._d.one_statement_writes:
                rows = (
                    yield Statement(
                        f"WITH claimed AS ({q.claim_payment} RETURNING request_id)"
                        f" SELECT request_id FROM claimed UNION ALL ({q.claim_owner}) LIMIT 1",
                        [*where, request_id, now, *where],
                    )
                ).rows
            else:
                yield Statement(q.claim_payment, [*where, request_id, now])
            if not rows:
                rows = (yield Statement(q.claim_owner, where)).rows
            if not rows:
                raise LedgerError(f"{self._where}: the claim of a payment for {request_id} vanished")
            return str(rows[0][0])

        return await self._execute(script, write=True)

    async def renew_lease(
        self, request_id: str, claim_id: str | None, *, lease_until: float, now: float
    ) -> bool:
        """See `Ledger.renew_lease` (`claim_id` None: the lease of a settlement in progress)."""
        check_lease(lease_until, now)
        if not possible_id(request_id):
            return False
        return (await self._run(*self._q.renew(request_id, claim_id, lease_until), write=True)).rowcount == 1

    async def get(self, request_id: str, *, owner: Owner | None = None) -> PaymentRequest | None:
        """The request as it now stands, or None when there is no such id (or `owner` did not quote it)."""
        if not possible_id(request_id):
            return None
        rows = (await self._run(*self._q.get(request_id, owner))).rows
        return request_from_row(rows[0]) if rows else None

    async def transition(
        self,
        request_id: str,
        event: Event,
        *,
        now: float,
        owner: Owner | None = None,
        **given: Unpack[EventArguments],
    ) -> PaymentRequest:
        """See `Ledger.transition`: one compare-and-set; a `begin_settlement` refused because
        the quote expired expires it (`StateConflict.current is State.EXPIRED`)."""
        change = plan_transition(event, now=now, owner=owner, **given)
        if not possible_id(request_id):
            raise missing(request_id, event)
        current: State | None = None
        row = await self._execute(partial(self._compare_and_set, request_id, change), write=True)
        if row is None:
            refusal = partial(self._refusal, request_id, change)
            row, current = await self._execute(refusal, write=True, atomic=True)
        if row is None:
            raise StateConflict(request_id, event.value, current)
        return request_from_row(row)

    async def claim(self, request_id: str, **terms: Unpack[ClaimTerms]) -> Claim | None:
        """See `Ledger.claim`: one UPDATE, guarded by the tool and price too, and its audit line."""
        change = claim_of(terms)
        if not possible_id(request_id):
            return None
        take = partial(self._take, request_id, None, change, terms["tool"], terms["price"])
        return await self._execute(take, write=True)

    async def claim_redeemable(self, *, caller: str, **terms: Unpack[ClaimTerms]) -> Claim | None:
        """See `Ledger.claim_redeemable`: as `claim`, of the request `find_redeemable` would find."""
        change = claim_of(terms)
        tool, owner = terms["tool"], terms.get("owner")
        pick = self._q.redeemable(tool=tool, caller=caller, now=change.now, owner=owner, ids_only=True)
        return await self._execute(partial(self._take, "", pick, change, tool, terms["price"]), write=True)

    async def find_redeemable(
        self, *, tool: str, caller: str, now: float, owner: Owner | None = None
    ) -> PaymentRequest | None:
        """See `Ledger.find_redeemable`: paid, or redeeming under a lapsed lease; oldest first."""
        found = self._q.redeemable(tool=tool, caller=caller, now=now, owner=owner, ids_only=False)
        rows = (await self._run(*found)).rows
        return request_from_row(rows[0]) if rows else None

    async def settlements(self, request_id: str | None = None) -> list[SettlementRecord]:
        """Recorded settlements, oldest first: all of them, or those of one request."""
        rows = await self._every_or_of(self._q.settlements, self._q.settlements_of, request_id)
        return [settlement_from_row(row) for row in rows]

    async def audit(self, request_id: str | None, event: str, detail: str, *, now: float) -> None:
        """Append one line to the audit trail (its detail bounded)."""
        stored_id, stored_event, stored_detail = audit_line(request_id, event, detail)
        await self._run(self._q.insert_audit, [stored_id, now, stored_event, stored_detail], write=True)

    async def audit_trail(self, request_id: str | None = None) -> list[tuple[float, str | None, str, str]]:
        """Audit lines `(at, request_id, event, detail)` in the order written: all, or one request's."""
        rows = await self._every_or_of(self._q.audit_trail, self._q.audit_trail_of, request_id)
        return [(at, rid, event, detail) for at, rid, event, detail in rows]

    async def requests(
        self, *, states: Collection[State] | None = None, limit: int = 100, owner: Owner | None = None
    ) -> list[PaymentRequest]:
        """See `Ledger.requests`: newest first, at most `limit`."""
        result = await self._run(*self._q.requests(states, limit, owner), long=True)
        return [request_from_row(row) for row in result.rows]

    async def count_open(self, *, caller: str | None, now: float, owner: Owner | None = None) -> int:
        """See `Ledger.count_open`: unpaid and unexpired at `now`."""
        return int((await self._run(*self._q.count_open(caller, now, owner))).rows[0][0])

    async def purge_expired(self, *, before: float, owner: Owner | None = None) -> int:
        """See `Ledger.purge_expired`: the requests, their audit lines and their payment claims."""
        t, params = self._t, list[object]([before])
        where = f"{self._q.expired}{self._q.owned(owner, params)}"
        if self._d.one_statement_writes:
            sql = (
                f"WITH gone AS (DELETE FROM {t.requests} WHERE {where} RETURNING id),"
                f" unlogged AS (DELETE FROM {t.audit} WHERE request_id IN (SELECT id FROM gone)),"
                f" unclaimed AS (DELETE FROM {t.claims} WHERE request_id IN (SELECT id FROM gone))"
                " SELECT count(*) FROM gone"
            )
            return int((await self._run(sql, params, write=True, long=True)).rows[0][0])

        def script() -> Script[int]:
            # The dependents first, while the requests that name them are still there.
            gone = f"SELECT id FROM {t.requests} WHERE {where}"
            yield Statement(f"DELETE FROM {t.audit} WHERE request_id IN ({gone})", params)
            yield Statement(f"DELETE FROM {t.claims} WHERE request_id IN ({gone})", params)
            return (yield Statement(f"DELETE FROM {t.requests} WHERE {where}", params)).rowcount

        return await self._execute(script, write=True, long=True)

    async def purge_unattached_audit(self, *, before: float) -> int:
        """Delete audit lines of no request written before `before`."""
        return (await self._run(self._q.purge_unattached_audit, [before], write=True, long=True)).rowcount

    async def clear_results(self, *, before: float, owner: Owner | None = None) -> int:
        """Forget the stored results of requests (of `owner`, when given) consumed before `before`."""
        sql, params = self._q.clear_results(before, owner)
        return (await self._run(sql, params, write=True, long=True)).rowcount

    async def expire_overdue(self, *, now: float, owner: Owner | None = None) -> list[str]:
        """See `Ledger.expire_overdue`: every issued request due at `now`; their ids, in order."""
        change = expiry(now, "overdue", owner)
        p, params = self._d.param, [State.ISSUED.value, now]
        where = f"state = {p} AND expires_at <= {p}{self._q.owned(owner, params)}"

        def script() -> Script[list[str]]:
            if self._d.one_statement_writes:
                update = f"UPDATE {self._t.requests} SET state = {p} WHERE {where}"
                moved = yield from self._logged(
                    Statement(update, [change.target.value, *params]),
                    returning="id",
                    key=None,
                    audit=[now, change.event.value, change.detail],
                )
                return [str(request_id) for (request_id,) in moved]
            # Read under the write transaction, so every id read is still issued when it moves.
            found = yield Statement(f"SELECT id FROM {self._t.requests} WHERE {where} ORDER BY id", params)
            ids = [str(request_id) for (request_id,) in found.rows]
            for request_id in ids:
                yield from self._compare_and_set(request_id, change)
            return ids

        return await self._execute(script, write=True, long=True)

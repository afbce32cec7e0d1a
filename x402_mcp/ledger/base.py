"""The ledger protocol. The records it keeps are the core's (`x402_mcp.core.states`)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol, runtime_checkable

from ..core.states import Claim, Event, Owner, PaymentKey, PaymentRequest, SettlementRecord, State

__all__ = ["Claim", "Ledger", "Owner", "PaymentKey", "PaymentRequest", "SettlementRecord"]


@runtime_checkable
class Ledger(Protocol):
    """Durable storage of payment requests, settlements and an audit trail.

    Every state change goes through `transition`, which applies the lifecycle
    table as one atomic compare-and-set and raises `StateConflict` when the
    request is not in a source state of the event (so two concurrent callers
    can never both claim one payment).

    Every read or write of a stored request takes an optional `owner`: given, a request
    quoted by another server (another payee, network or asset) is treated as missing, the
    same as an unknown id, and never changed. Only tools that administer a whole shared
    ledger (the `x402-mcp ledger` command) leave it out.

    An id that cannot exist (not a string, empty, over 100 characters, or
    holding control characters) is never sent to the database: `get` answers
    None, `transition` raises `StateConflict` (missing), `settlements` and
    `audit_trail` answer nothing.
    """

    async def open(self) -> None:
        """Create or migrate the schema; idempotent."""

    async def close(self) -> None: ...

    async def issue(self, request: PaymentRequest, *, max_open: int | None = None) -> None:
        """Store a newly minted request (state `issued`).

        With `max_open`, only if its caller (for a caller of None: all callers
        without an identity, together) holds fewer open requests than that from the
        request's owner (another server sharing the ledger has a cap of its own); the
        count and the insert are one transaction, so racing issues cannot
        overshoot the cap.

        Raises:
            TooManyOpenRequests: the cap is reached (nothing is written).
        """

    async def claim_payment(self, key: PaymentKey, request_id: str, *, now: float) -> str:
        """Bind the payment `key` to `request_id`, unless it is bound already; return the
        request it is bound to (`request_id` itself when this claim, or an earlier one
        for the same request, holds it). One atomic statement; claims are never released
        while their request is kept."""
        ...

    async def renew_lease(
        self, request_id: str, claim_id: str | None, *, lease_until: float, now: float
    ) -> bool:
        """Extend a lease to `lease_until`: a running claim's (fenced by `claim_id`), or with
        `claim_id` None a settlement's in progress (the request is `settling`; the lease tells
        reconciliation its settler is alive). False when the request is no longer held so
        (consumed, released, taken over, settled)."""
        ...

    async def get(self, request_id: str, *, owner: Owner | None = None) -> PaymentRequest | None: ...

    async def transition(
        self,
        request_id: str,
        event: Event,
        *,
        now: float,
        payload: str | None = None,
        settlement: SettlementRecord | None = None,
        lease_until: float | None = None,
        result: str | None = None,
        claim_id: str | None = None,
        owner: Owner | None = None,
    ) -> PaymentRequest:
        """Move a request along the lifecycle and return it as it now stands.

        `payload` (and optionally a settling `lease_until`) is stored with
        `begin_settlement`; `settlement` is recorded (in the settlements table
        and on the request) with `settled`; `lease_until` goes with `claim`;
        `result` with `consume`. `claim_id` is a fencing token: given with
        `claim` it is stored, and `consume`/`release` given one succeed only
        while the claim they name still holds the request.

        Raises:
            StateConflict: the request is missing or not in a source state.
        """
        ...

    async def claim(
        self,
        request_id: str,
        *,
        tool: str,
        price: int,
        lease_until: float,
        claim_id: str,
        now: float,
        owner: Owner | None = None,
    ) -> Claim | None:
        """Claim `request_id` for one run of `tool` costing `price`, in one write: the `claim`
        transition (lease and fencing token, audit line), taken only if the request was quoted
        for `tool` at `price` or more and is paid (or redeeming under a lapsed lease).

        Answers the claimed request with the network it settled on, or None when nothing was
        claimed (no such request, another tool, a lower price, not paid, or held by a live
        claim); nothing is written then, and the caller finds out why the slow way.
        """
        ...

    async def claim_redeemable(
        self,
        *,
        tool: str,
        caller: str,
        price: int,
        now: float,
        lease_until: float,
        claim_id: str,
        owner: Owner | None = None,
    ) -> Claim | None:
        """`claim` of the request `find_redeemable` would find, if it covers `price`, in the
        same one write: a caller's plain retry spends its oldest paid request with no read
        before. None (nothing written) when there is none, or the oldest does not cover it.
        """
        ...

    async def find_redeemable(
        self, *, tool: str, caller: str, now: float, owner: Owner | None = None
    ) -> PaymentRequest | None:
        """The oldest paid, unclaimed request for `tool` issued to `caller`."""
        ...

    async def settlements(self, request_id: str | None = None) -> list[SettlementRecord]: ...

    async def requests(
        self, *, states: Collection[State] | None = None, limit: int = 100, owner: Owner | None = None
    ) -> list[PaymentRequest]:
        """Requests in any of `states` (all when None), newest first, at most `limit`."""
        ...

    async def count_open(self, *, caller: str | None, now: float, owner: Owner | None = None) -> int:
        """How many requests issued to `caller` (None: to callers without an identity)
        are still unpaid and unexpired at `now` (`issue` counts those of the request's owner)."""
        ...

    async def expire_overdue(self, *, now: float, owner: Owner | None = None) -> list[str]:
        """Expire every issued request whose `expires_at` is at or before `now`; return their ids."""
        ...

    async def purge_expired(self, *, before: float, owner: Owner | None = None) -> int:
        """Delete expired requests whose `expires_at` is before `before`, with their audit
        lines and payment claims; return how many went. Paid requests are never deleted."""
        ...

    async def purge_unattached_audit(self, *, before: float) -> int:
        """Delete audit lines that belong to no request (refusals of unparseable payments,
        unknown ids) written before `before`; return how many went."""
        ...

    async def clear_results(self, *, before: float, owner: Owner | None = None) -> int:
        """Forget the stored tool results of requests consumed before `before` (the request,
        its settlement and its audit trail stay); return how many were cleared."""
        ...

    async def audit(self, request_id: str | None, event: str, detail: str, *, now: float) -> None:
        """Append a line to the audit trail (refused payments leave only this); `detail`
        is kept bounded (see `_changes.bounded_detail`)."""

    async def audit_trail(
        self, request_id: str | None = None
    ) -> list[tuple[float, str | None, str, str]]: ...

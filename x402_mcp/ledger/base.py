"""The ledger protocol and the records it keeps."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..core.lifecycle import Event, State


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    """One settlement on chain: what moved, from whom, in which transaction."""

    tx_hash: str
    payer: str
    amount: int
    asset: str
    network: str
    settled_at: float


@dataclass(frozen=True, slots=True)
class PaymentKey:
    """What makes a payment one payment, whichever request it is presented for.

    EVM: the network, the payer and the EIP-3009 nonce of the signed
    authorization (both lower-cased). Solana: the network, an empty payer and
    the SHA-256 of the message the payer signed (`sha256:<hex>`).
    """

    network: str
    payer: str
    nonce: str


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """A price quoted to one caller for one tool call, and what became of it.

    `price` is in atomic units of `asset`. `caller` is who it was issued to
    (`stdio:<uuid>`, `session:<Mcp-Session-Id>`, `principal:<id>`), or None when
    the host gave no identity and the id itself is the capability.
    """

    id: str
    tool: str
    price: int
    asset: str
    network: str
    pay_to: str
    caller: str | None
    created_at: float
    expires_at: float
    max_timeout_seconds: int
    state: State = State.ISSUED
    description: str = ""
    payload: str | None = None
    tx_hash: str | None = None
    payer: str | None = None
    paid_at: float | None = None
    lease_until: float | None = None
    consumed_at: float | None = None
    result: str | None = None
    claim_id: str | None = None

    def is_expired(self, now: float) -> bool:
        return self.state is State.ISSUED and now >= self.expires_at


@dataclass(frozen=True, slots=True)
class Owner:
    """The server a payment request belongs to: the payee, network and asset it quoted.

    Several servers may share one ledger; a request is theirs to settle, redeem, expire
    or reconcile only when all three match (the ledger's `owner=` arguments put this in
    the SQL, so a foreign row is never read or moved). The values are compared exactly
    as the quoting server stored them (a checksummed payee, the CAIP-2 network, the
    token address).
    """

    pay_to: str
    network: str
    asset: str

    @classmethod
    def of(cls, request: PaymentRequest) -> Owner:
        """The owner that quoted `request`."""
        return cls(request.pay_to, request.network, request.asset)

    def owns(self, request: PaymentRequest) -> bool:
        """Whether `request` was quoted by this server (the predicate the SQL also applies)."""
        return (request.pay_to, request.network, request.asset) == (self.pay_to, self.network, self.asset)

    def values(self) -> list[object]:
        """The parameters of `Queries.owned`, in its order."""
        return [self.pay_to, self.network, self.asset]


@dataclass(frozen=True, slots=True)
class Claim:
    """A paid request claimed for one run (`Ledger.claim`), and where it was paid.

    `network` is the network of its latest recorded settlement (a request can be
    paid on Solana as well as on its own network), or None when none is recorded.
    """

    request: PaymentRequest
    network: str | None


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

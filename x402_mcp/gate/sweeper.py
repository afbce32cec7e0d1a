"""Bounded state: unpaid requests expire and go, no caller holds too many open, and
nothing an outsider can make us store is kept for good.

Every call of a paid tool without a payment mints a payment request, so a
flood of unpaid calls would grow the ledger without bound. These limits stop it:

- a cap on the requests one caller holds *open* (issued, unpaid, unexpired),
  and one shared cap on the open requests of all callers without an identity
  (stateless HTTP, no auth) together. Past it, the call is refused with
  `TooManyOpenRequests` and nothing is written (not even an audit line, which
  a flood would grow just the same). The ledger counts and inserts in one
  transaction, so concurrent calls cannot overshoot the cap;
- a sweep that expires overdue requests and, once they have been expired for
  `retention_seconds`, deletes them with their audit lines and payment claims;
  deletes audit lines that belong to no request (refusals of payments that
  named none) after the same window; and forgets stored tool results
  `result_retention_seconds` after their request was consumed. Paid requests,
  settlements and their audit trail are never deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..errors import ConfigurationError
from ..ledger.base import Ledger, Owner, PaymentRequest

logger = logging.getLogger("x402_mcp")

__all__ = ["Sweep", "Sweeper"]

DEFAULT_RESULT_RETENTION_SECONDS = 7 * 86_400


@dataclass(frozen=True, slots=True)
class Sweep:
    """What one sweep did: requests expired and deleted, unattached audit lines
    deleted, stored results cleared."""

    expired: int
    purged: int
    audit_purged: int = 0
    results_cleared: int = 0


class Sweeper:
    """Enforces the caps on open requests and cleans old records out of `ledger`.

    Args:
        max_open_per_caller: open requests one caller may hold (None: no cap).
        max_open_anonymous: open requests all callers without an identity may
            hold together (None: no cap).
        retention_seconds: how long an expired request, or an audit line of
            no request, stays visible (for `x402-mcp ledger` and support
            questions) before it is deleted.
        result_retention_seconds: how long the result of a consumed request
            stays stored.

    Raises:
        ConfigurationError: for a cap below 1 or a negative retention.
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        max_open_per_caller: int | None = 20,
        max_open_anonymous: int | None = 1000,
        retention_seconds: float = 86_400,
        result_retention_seconds: float = DEFAULT_RESULT_RETENTION_SECONDS,
        owner: Owner | None = None,
    ) -> None:
        for name, cap in (
            ("max_open_requests_per_caller", max_open_per_caller),
            ("max_open_anonymous_requests", max_open_anonymous),
        ):
            if cap is not None and cap < 1:
                raise ConfigurationError(f"{name} must be at least 1 (or None for no cap)")
        if retention_seconds < 0:
            raise ConfigurationError("expired_retention_seconds must not be negative")
        if result_retention_seconds < 0:
            raise ConfigurationError("result_retention_seconds must not be negative")
        self.ledger = ledger
        self.max_open_per_caller = max_open_per_caller
        self.max_open_anonymous = max_open_anonymous
        self.retention_seconds = retention_seconds
        self.result_retention_seconds = result_retention_seconds
        # A sweep expires, purges and clears only this server's requests: another server
        # sharing the ledger keeps its own retention.
        self.owner = owner

    def cap_for(self, caller: str | None) -> int | None:
        """The cap on open requests that applies to `caller` (None: callers without an identity)."""
        return self.max_open_anonymous if caller is None else self.max_open_per_caller

    async def issue(self, request: PaymentRequest) -> None:
        """Store `request` if its caller is under its cap, counted in the same transaction.

        Raises:
            TooManyOpenRequests: the cap is reached; nothing was written.
        """
        await self.ledger.issue(request, max_open=self.cap_for(request.caller))

    async def sweep(self, *, now: float) -> Sweep:
        """Expire overdue requests; delete those expired, and audit lines of no request,
        before the retention window; clear results older than their retention."""
        expired = await self.ledger.expire_overdue(now=now, owner=self.owner)
        before = now - self.retention_seconds
        purged = await self.ledger.purge_expired(before=before, owner=self.owner)
        audit_purged = await self.ledger.purge_unattached_audit(before=before)
        cleared = await self.ledger.clear_results(
            before=now - self.result_retention_seconds, owner=self.owner
        )
        if expired or purged or audit_purged or cleared:
            logger.info(
                "ledger sweep: %d requests expired, %d expired requests deleted,"
                " %d unattached audit lines deleted, %d stored results cleared",
                len(expired),
                purged,
                audit_purged,
                cleared,
            )
        return Sweep(len(expired), purged, audit_purged, cleared)

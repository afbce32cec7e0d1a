"""Bounded state: unpaid requests expire and go, and no caller can hold too many open.

Every call of a paid tool without a payment mints a payment request, so a
flood of unpaid calls would grow the ledger without bound. Two limits stop it:

- a cap on the requests one caller holds *open* (issued, unpaid, unexpired):
  past it, the call is refused with `TooManyOpenRequests` and nothing is
  written (not even an audit line, which a flood would grow just the same);
- a sweep that expires overdue requests and, once they have been expired for
  `retention_seconds`, deletes them with their audit lines. Paid requests,
  settlements and their audit trail are never deleted.

Callers without an identity (stateless HTTP, no auth) cannot be capped one by
one; the sweep still bounds what their unpaid requests leave behind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .errors import ConfigurationError, TooManyOpenRequests
from .ledger.base import Ledger

logger = logging.getLogger("x402_mcp")

__all__ = ["Sweep", "Sweeper"]


@dataclass(frozen=True, slots=True)
class Sweep:
    """What one sweep did: requests expired, and expired requests deleted."""

    expired: int
    purged: int


class Sweeper:
    """Enforces `max_open_per_caller` and cleans expired requests out of `ledger`.

    Args:
        max_open_per_caller: open requests one caller may hold (None: no cap).
        retention_seconds: how long an expired request stays visible (for
            `x402-mcp ledger` and support questions) before it is deleted.

    Raises:
        ConfigurationError: for a cap below 1 or a negative retention.
    """

    def __init__(
        self, ledger: Ledger, *, max_open_per_caller: int | None = 20, retention_seconds: float = 86_400
    ) -> None:
        if max_open_per_caller is not None and max_open_per_caller < 1:
            raise ConfigurationError("max_open_requests_per_caller must be at least 1 (or None for no cap)")
        if retention_seconds < 0:
            raise ConfigurationError("expired_retention_seconds must not be negative")
        self.ledger = ledger
        self.max_open_per_caller = max_open_per_caller
        self.retention_seconds = retention_seconds

    async def admit(self, caller: str | None, *, now: float) -> None:
        """Check that `caller` may be issued one more request.

        The count and the insert that follows are not one transaction, so
        callers racing each other may overshoot the cap by their concurrency;
        the cap bounds a flood, it is not an exact quota.

        Raises:
            TooManyOpenRequests: the caller holds `max_open_per_caller` open requests.
        """
        cap = self.max_open_per_caller
        if cap is None or caller is None:
            return
        held = await self.ledger.count_open(caller=caller, now=now)
        if held >= cap:
            raise TooManyOpenRequests(
                f"you already hold {held} unpaid payment requests (the limit is {cap}); "
                "pay one of them (pass its payment_request_id) or wait for them to expire"
            )

    async def sweep(self, *, now: float) -> Sweep:
        """Expire overdue requests, then delete those expired before the retention window."""
        expired = await self.ledger.expire_overdue(now=now)
        purged = await self.ledger.purge_expired(before=now - self.retention_seconds)
        if expired or purged:
            logger.info(
                "ledger sweep: %d requests expired, %d expired requests deleted", len(expired), purged
            )
        return Sweep(len(expired), purged)

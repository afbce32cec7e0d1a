"""Upkeep: reconciling interrupted settlements and sweeping the ledger, beside the calls.

It runs as a task for as long as the server does (entered by the frameworks'
lifespans through `Gate.running`, or by `async with payments:`), once at start
and then every `interval_seconds`; never inside a paid call, which it would slow
down and could fail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio

from ..errors import LedgerError, SettlementError
from ..ledger.base import Ledger, Owner
from ..telemetry import Telemetry
from .reconcile import Reconciler
from .sweeper import Sweeper

logger = logging.getLogger("x402_mcp")


class Upkeep:
    """One server's reconciliation and sweep, at most once per `interval_seconds`."""

    def __init__(
        self,
        reconciler: Reconciler,
        sweeper: Sweeper,
        telemetry: Telemetry,
        *,
        owner: Owner,
        interval_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self.reconciler = reconciler
        self.sweeper = sweeper
        self.telemetry = telemetry
        self.owner = owner
        self.interval_seconds = interval_seconds
        self.clock = clock
        self._due = 0.0
        self._lock = anyio.Lock()

    async def run(self, ledger: Ledger, *, force: bool = False) -> None:
        """Reconcile and sweep, if due (or `force`) and not running already.

        Failures are logged, never raised: the next round tries again.
        """
        if (not force and self.clock() < self._due) or self._lock.locked():
            return
        async with self._lock:
            self._due = self.clock() + self.interval_seconds
            try:
                await self.reconciler.run()
                swept = await self.sweeper.sweep(now=self.clock())
                self.telemetry.swept(swept.expired, self.owner.network)
                await self.telemetry.refresh_open(ledger, self.owner, self.clock())
            except (LedgerError, SettlementError):
                logger.exception("ledger upkeep (reconciliation, sweep) failed; it will be retried")

    async def forever(self, ledger: Callable[[], Ledger]) -> None:
        """Run every `interval_seconds` until cancelled (the first round is the caller's)."""
        while True:
            await anyio.sleep(max(self.interval_seconds, 1.0))
            await self.run(ledger())

"""The gate's side of a server's runs, alike for the FastMCP and SDK 1.x doors: each run is
checked as it starts (every paid tool gated, every price payable), enters the page's lifespan,
and is counted (a door refuses paid calls outside any)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ..gate import Gate
from .coverage import check_at_start


class ServerRuns:
    """The gate's side of a server's runs: checked as each starts, the page's lifespan entered
    for it, and how many are live (a door refuses paid calls outside any)."""

    def __init__(self, gate: Gate, server: Any) -> None:
        self.gate = gate
        self.server = server
        self.live = 0

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        # Tools are registered after the server is made: their prices are checked as it starts.
        await check_at_start(self.server, self.gate.asset.decimals, self.gate.asset.symbol)
        # The gate while the server runs: ledger open, upkeep as a task, the page's side port.
        async with self.gate.running():
            self.live += 1
            try:
                yield
            finally:
                self.live -= 1

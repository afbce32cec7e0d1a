"""What every door does alike around a server's run, on either MCP SDK line: run the gate's
lifespan with the server's (and count the runs), and point tool registrations at `@paid`'s guard."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from ..gate import Gate
from .coverage import check_at_start


def wrap_lowlevel_lifespan(lowlevel: Any, outer: Callable[[], AbstractAsyncContextManager[None]]) -> None:
    """Run `outer()` around a low-level `Server`'s lifespan, in the task that runs the server
    (so a task group `outer` opens is closed by the task that opened it)."""
    inner = lowlevel.lifespan

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with outer(), inner(app) as state:
            yield state

    lowlevel.lifespan = lifespan


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


def rebind_registrations(
    holders: list[object], registration: type, old: Callable[..., Any], new: Callable[..., Any]
) -> int:
    """Point each tool registration of class `registration` among `holders` that runs `old` at
    `new` (same arguments, as async as `old`); how many were.

    The frameworks' tool decorators register a function and return it: `@paid` written above
    one puts its guard in through here. The framework derived the schemas from `old` already
    and reads `fn` again on every run.
    """
    rebound = 0
    for holder in holders:
        if isinstance(holder, registration) and getattr(holder, "fn", None) is old:
            holder.fn = new  # type: ignore[attr-defined]
            rebound += 1
    return rebound

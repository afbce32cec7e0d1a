"""What every seam does alike on either MCP SDK line: run an outer lifespan around a low-level
server's, and point tool registrations at `@paid`'s guard (the doors count runs in `_runs`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any


def wrap_lowlevel_lifespan(lowlevel: Any, outer: Callable[[], AbstractAsyncContextManager[None]]) -> None:
    """Run `outer()` around a low-level `Server`'s lifespan, in the task that runs the server
    (so a task group `outer` opens is closed by the task that opened it)."""
    inner = lowlevel.lifespan

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with outer(), inner(app) as state:
            yield state

    lowlevel.lifespan = lifespan


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

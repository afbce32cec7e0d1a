"""Running the gate's lifespan with an MCP SDK low-level `Server`'s (either SDK line)."""

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

"""uvicorn as this package serves it to strangers: a request head must arrive in time.

uvicorn (h11) waits forever for the head of a request: a client that connects
and sends a header line now and then holds a connection, and its file
descriptor, for good; any byte it sends even cancels the keep-alive timer.
Enough such clients exhaust the process's descriptors, and on the stdio side
port that process is the MCP server itself. `HeadDeadlineH11` closes a
connection that has not delivered a whole request head `HEAD_DEADLINE_SECONDS`
after it opened or after its last answer; a request in progress is left to the
body deadline of `bodies.read_bounded`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from typing import Any

import anyio
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["HEAD_DEADLINE_SECONDS", "HeadDeadlineH11", "guarded_config"]

HEAD_DEADLINE_SECONDS = 10.0
"""How long a connection may take to send a whole request head (and how long it may idle)."""


class HeadDeadlineH11(H11Protocol):
    """uvicorn's h11 protocol, closing connections that do not send a request head in time."""

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        # The module setting is read when armed, so a test (or an operator) may shorten it.
        self._head_timer = self.loop.call_later(HEAD_DEADLINE_SECONDS, self._head_overdue)

    def _head_overdue(self) -> None:
        self._head_timer = None
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            return  # a request is being answered; its body has a deadline of its own
        if not self.transport.is_closing():
            self.transport.close()


def guarded_config(app: Any, **options: Any) -> uvicorn.Config:
    """A uvicorn `Config` for `app` served to anyone: HTTP/1.1 through `HeadDeadlineH11`."""
    return uvicorn.Config(app, http=HeadDeadlineH11, **options)


class SideServer(uvicorn.Server):
    """A uvicorn server beside the MCP server: it says when it is ready and leaves the
    process's signals to the MCP server."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = anyio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()

    # The MCP server owns the process's signals; a side page must not take them over.
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

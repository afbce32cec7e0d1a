"""Payment hooks: an author's async callbacks for payment events, off the money path.

`payments.on("paid", callback)` registers `async def callback(event: PaymentEvent)`.
An event is handed over only once the ledger has recorded it, and only by a
non-blocking put into a bounded queue: the call that caused it never waits for
a hook, never sees its exception, and its outcome is already decided. One worker
task, owned by the server's lifespan, runs the hooks in the order the events
happened, each under a time limit. A hook that raises or times out is logged and
counted (`x402.hook.failures`); an event that finds the queue full is dropped,
logged and counted (`x402.hook.dropped`).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..errors import ConfigurationError
from .events import EVENT_KINDS, PaymentEvent

logger = logging.getLogger("x402_mcp.hooks")

Hook = Callable[[PaymentEvent], Awaitable[object]]
"""An async callback for one kind of payment event."""

DEFAULT_QUEUE_SIZE = 1000
DEFAULT_HOOK_TIMEOUT_SECONDS = 30.0
DRAIN_SECONDS = 5.0
"""How long a stopping server keeps running the hooks of events already queued."""


class Hooks:
    """The registered hooks of one `Payments`, and the queue that feeds them."""

    def __init__(
        self,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        timeout_seconds: float = DEFAULT_HOOK_TIMEOUT_SECONDS,
        on_failure: Callable[[str, str], None] = lambda kind, why: None,
    ) -> None:
        if queue_size < 1:
            raise ConfigurationError("the hook queue size must be at least 1")
        if timeout_seconds <= 0:
            raise ConfigurationError("the hook timeout must be a positive number of seconds")
        self._callbacks: dict[str, list[Hook]] = {}
        self.timeout_seconds = timeout_seconds
        self._on_failure = on_failure
        send, receive = anyio.create_memory_object_stream[PaymentEvent](queue_size)
        self._send: MemoryObjectSendStream[PaymentEvent] = send
        self._receive: MemoryObjectReceiveStream[PaymentEvent] = receive
        self.failures = 0
        """Hooks that raised or ran past their time limit."""
        self.dropped = 0
        """Events not delivered because the queue was full."""
        self._busy = False

    def on(self, event: str, callback: Hook) -> Hook:
        """Run `callback(event)` after each event of kind `event`; returns `callback`.

        Raises:
            ConfigurationError: an unknown event name, or a callback that is not an
                `async def` function.
        """
        if event not in EVENT_KINDS:
            raise ConfigurationError(
                f"unknown payment event {event!r}; hooks exist for: {', '.join(EVENT_KINDS)}"
            )
        if not inspect.iscoroutinefunction(callback) and not inspect.iscoroutinefunction(
            getattr(callback, "__call__", None)  # noqa: B004 - an object with an async __call__
        ):
            raise ConfigurationError(
                f"the hook for {event!r} must be an async function (async def), got {callback!r}"
            )
        self._callbacks.setdefault(event, []).append(callback)
        return callback

    def wanted(self, kind: str) -> bool:
        return bool(self._callbacks.get(kind))

    def emit(self, event: PaymentEvent) -> None:
        """Queue `event` for its hooks without waiting; never raises."""
        if not self.wanted(event.kind):
            return
        try:
            self._send.send_nowait(event)
        except anyio.WouldBlock:
            self.dropped += 1
            self._on_failure(event.kind, "dropped")
            logger.error(
                "payment hook queue full: the %s event of %s was not delivered to its hooks",
                event.kind,
                event.request_id,
            )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the hooks while the server runs (entered by the server's lifespan)."""
        async with anyio.create_task_group() as group:
            group.start_soon(self._work)
            try:
                yield
            finally:
                # A bounded wait at shutdown for the events already queued: polling is enough.
                with anyio.move_on_after(DRAIN_SECONDS, shield=True):
                    while self._busy or self._receive.statistics().current_buffer_used:  # noqa: ASYNC110
                        await anyio.sleep(0.01)
                group.cancel_scope.cancel()

    async def _work(self) -> None:
        async for event in self._receive:
            self._busy = True
            try:
                for callback in list(self._callbacks.get(event.kind, ())):
                    await self._run(callback, event)
            finally:
                self._busy = False

    async def _run(self, callback: Hook, event: PaymentEvent) -> None:
        why: str | None = None
        try:
            with anyio.fail_after(self.timeout_seconds):
                await callback(event)
        except TimeoutError:
            why = "timeout"
            logger.error(
                "payment hook %r for %s of %s ran past %ss and was cancelled",
                callback,
                event.kind,
                event.request_id,
                self.timeout_seconds,
            )
        except Exception:  # an author's hook may fail any way; it must not stop the others
            why = "error"
            logger.exception("payment hook %r for %s of %s failed", callback, event.kind, event.request_id)
        if why is not None:
            self.failures += 1
            self._on_failure(event.kind, why)

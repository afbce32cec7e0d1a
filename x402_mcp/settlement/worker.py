"""Running blocking web3 calls in worker threads, as many at once as the connection allows.

Every web3 call blocks, so each runs in a worker thread. Over our own JSON-RPC
connections several may run at once; other providers (the embedded py-evm chain)
get one at a time, behind a one-token `CapacityLimiter`, and a lock shared with
the chain's other users. Any failure but our own `SettlementError` becomes one,
in words that never repeat the node's (they may hold an RPC URL with its key).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import TypeVar, TypeVarTuple, Unpack

import anyio
import anyio.to_thread

from ..errors import SettlementError

__all__ = ["CONCURRENT_WORKERS", "ChainWorker"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# Worker threads one backend may keep busy when its relayer allows concurrent calls:
# settlements waiting for a block each hold one.
CONCURRENT_WORKERS = 32


class ChainWorker:
    """Runs calls to the node of the network labelled `label` in worker threads.

    `concurrent`: whether the calls may overlap (our own HTTP connections);
    `lock`: held around every call (shared with other users of a non-thread-safe web3).
    """

    def __init__(
        self, label: str, *, concurrent: bool, lock: contextlib.AbstractContextManager[object] | None
    ) -> None:
        self._label = label
        self._lock: contextlib.AbstractContextManager[object] = (
            lock if lock is not None else contextlib.nullcontext()
        )
        self.limiter = anyio.CapacityLimiter(CONCURRENT_WORKERS if concurrent else 1)

    async def call(self, func: Callable[[Unpack[Ts]], T], *args: *Ts) -> T:
        return await anyio.to_thread.run_sync(
            functools.partial(self._guarded, func, *args), limiter=self.limiter
        )

    def _guarded(self, func: Callable[[Unpack[Ts]], T], *args: *Ts) -> T:
        with self._lock:
            try:
                return func(*args)
            except SettlementError:
                raise
            except Exception as exc:
                # The message stays generic: RPC errors often embed the node URL, and hosted
                # RPC URLs carry API keys. The cause (for the log) is chained.
                raise SettlementError(
                    f"the {self._label} node failed during settlement ({type(exc).__name__})"
                ) from exc

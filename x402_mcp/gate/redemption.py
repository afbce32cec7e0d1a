"""Running a tool once for a paid request: claim, run, then consume or release.

A claim moves the request `paid → redeeming` with a lease and a fencing token
(`claim_id`). The run that holds the claim either consumes the request with the
tool's result, or, when the tool failed or was cancelled, releases it back to
`paid` so the same payment can be redeemed again. A run whose lease lapsed and
was taken over can no longer consume: the fencing token no longer matches.

While the tool runs, a heartbeat renews the lease about every third of its
length, so a run longer than the lease is not taken for a dead one and run a
second time by a retry. Only a run whose process died (or hangs so badly that
its heartbeat cannot reach the ledger) lets its lease lapse. A tool run in the
spec's order (verify, run, settle) holds its request in `settling` instead; the
same heartbeat renews that lease, so reconciliation does not settle the payment
from under the run (which would then be paid for, and run, twice). When the
settlement overlaps the run, the request moves from `settling` to `redeeming`
under this run's claim mid-run, and the heartbeat follows it (`Hold`).

A redemption takes one ledger write to claim (`Ledger.claim`, which also says
where the payment settled, for the receipt) and one to consume; the slower
`transition` path is taken only when that claim finds nothing to take, to say why.
What follows a run (consume, or release) is the flow's to decide (`core.flow`,
`Order.REDEEM`); this module carries out each step.
A caller's plain retry claims its oldest paid request in the same one write
(`Ledger.claim_redeemable`), with no read before it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
from mcp_types import CallToolResult

from ..core.challenge import receipt_meta
from ..core.states import Event, State
from ..errors import LedgerError
from ..ledger.base import Claim, PaymentRequest
from .collect import Collector

__all__ = ["Hold", "Redemption"]

logger = logging.getLogger("x402_mcp")

T = TypeVar("T")


class Hold:
    """The request a running tool holds, as its heartbeat must renew it: replaced when a
    settlement that overlaps the run records it under the run's claim."""

    __slots__ = ("request",)

    def __init__(self, request: PaymentRequest) -> None:
        self.request = request


class Redemption:
    """Claims paid requests for one tool run each, through the collector's ledger."""

    def __init__(self, collector: Collector, *, lease_seconds: float) -> None:
        self.collector = collector
        self.lease_seconds = lease_seconds

    def new_lease(self) -> tuple[float, str]:
        """`(lease_until, claim_id)` for a claim taken now."""
        return self.collector.clock() + self.lease_seconds, secrets.token_hex(16)

    def settling_claim(self) -> tuple[float, str]:
        """`Collector.settle`'s `claim`: the run that settles goes on to hold the request."""
        return self.lease_seconds, secrets.token_hex(16)

    async def claim(self, request: PaymentRequest) -> PaymentRequest:
        """Take `request` for one run (raises `Refused` when another call holds or used it)."""
        lease_until, claim_id = self.new_lease()
        return await self.collector.transition(
            request, Event.CLAIM, lease_until=lease_until, claim_id=claim_id
        )

    async def take(self, request_id: str, *, tool: str, price: int) -> Claim | None:
        """Claim paid `request_id` for one run of `tool` at `price` in one write, or None when
        it cannot be claimed so (see `Ledger.claim`; nothing was written)."""
        lease_until, claim_id = self.new_lease()
        return await self.collector.ledger.claim(
            request_id,
            tool=tool,
            price=price,
            lease_until=lease_until,
            claim_id=claim_id,
            now=self.collector.clock(),
            owner=self.collector.owner,
        )

    async def take_redeemable(self, *, tool: str, caller: str, price: int) -> Claim | None:
        """Claim the oldest paid request of `caller` for `tool`, if it covers `price`, in one
        write; None when there is none such (see `Ledger.claim_redeemable`)."""
        lease_until, claim_id = self.new_lease()
        return await self.collector.ledger.claim_redeemable(
            tool=tool,
            caller=caller,
            price=price,
            lease_until=lease_until,
            claim_id=claim_id,
            now=self.collector.clock(),
            owner=self.collector.owner,
        )

    async def holding(self, held: PaymentRequest | Hold, tool: Callable[[], Awaitable[T]]) -> T:
        """Run `tool` while a heartbeat keeps `held` from being taken for abandoned; return its
        result or raise its error.

        `held` is a request this call claimed (its lease is renewed, fenced by its
        claim id) or, in the spec's order, one it is settling (its settling lease is
        renewed, so reconciliation does not settle it from under a long run); a `Hold`
        when it moves from the one to the other during the run.
        """
        hold = held if isinstance(held, Hold) else Hold(held)
        # A settlement began without a lease (reconciliation then counts from its start):
        # take one at once. A claim was taken with one.
        first = self.lease_seconds / 3 if hold.request.claim_id is not None else 0.0
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # another event loop than asyncio's (trio)
            return await self._holding_in_group(hold, tool, first)
        beat = _Heartbeat(self, hold, loop, first)
        try:
            return await tool()
        finally:
            await beat.stop()

    async def _holding_in_group(self, hold: Hold, tool: Callable[[], Awaitable[T]], first: float) -> T:
        failure: Exception | None = None

        async def beat() -> None:
            await anyio.sleep(first)
            await self._keep_alive(hold)

        async with anyio.create_task_group() as group:
            group.start_soon(beat)
            try:
                result = await tool()
            except Exception as exc:
                # Raised after the group closes, as itself (not wrapped in an ExceptionGroup).
                failure = exc
            finally:
                group.cancel_scope.cancel()
        if failure is not None:
            raise failure
        return result

    async def _keep_alive(self, hold: Hold, stopping: anyio.Event | None = None) -> None:
        """Renew the lease now and every third of its length until cancelled or `stopping`
        is set, or until it is lost."""
        interval = self.lease_seconds / 3
        delay = 0.0
        while True:
            if delay:
                if stopping is None:
                    await anyio.sleep(delay)
                else:
                    with anyio.move_on_after(delay):
                        await stopping.wait()
                    if stopping.is_set():
                        return
            delay = interval
            held = hold.request
            now = self.collector.clock()
            try:
                # Shielded: the run ending cancels the heartbeat between beats, never inside a write.
                with anyio.CancelScope(shield=True):
                    renewed = await self.collector.ledger.renew_lease(
                        held.id, held.claim_id, lease_until=now + self.lease_seconds, now=now
                    )
            except LedgerError:
                # A ledger hiccup: the lease still runs; the next beat tries again.
                logger.warning("could not renew the lease of %s; retrying", held.id, exc_info=True)
                continue
            if not renewed and hold.request is not held:
                # An overlapping settlement moved it under this run's claim meanwhile: renew that.
                delay = 0.0
                continue
            if not renewed:
                if held.state is State.SETTLING:
                    # A settlement that overlaps the run failed, and the request is payable again.
                    logger.info("%s is no longer settling while its tool runs", held.id)
                else:
                    logger.warning("%s was no longer held (%s) while its tool ran", held.id, held.state.value)
                return

    async def release(self, claimed: PaymentRequest) -> None:
        await self.collector.transition(claimed, Event.RELEASE, claim_id=claimed.claim_id)

    async def finish(
        self, claimed: PaymentRequest, result: CallToolResult, *, network: str | None = None
    ) -> CallToolResult:
        """Consume the claimed request with `result`, and attach the x402 settlement receipt.

        `network` is where it settled, when the caller knows; otherwise it is looked up.
        """
        ledger = self.collector.ledger
        consumed = await self.collector.transition(
            claimed,
            Event.CONSUME,
            result=result.model_dump_json(by_alias=True, exclude_none=True),
            # The fencing token: if our lease lapsed and another run took over, we may not consume.
            claim_id=claimed.claim_id,
        )
        self.collector.telemetry.redeemed(consumed, self.collector.clock())
        if network is None:
            settled = await ledger.settlements(consumed.id)
            network = settled[-1].network if settled else None
        meta = receipt_meta(consumed, network=network, response=self.collector.take_receipt(consumed.id))
        result.meta = {**(result.meta or {}), **meta}
        return result


class _Heartbeat:
    """The lease heartbeat of one run on asyncio, started only once the run outlasts `first`.

    Most runs are shorter than a third of the lease: for them this costs a timer,
    where a heartbeat task costs a task group and several turns of the event loop to
    start and to end (about as much as the rest of a redemption).
    """

    def __init__(
        self, redemption: Redemption, hold: Hold, loop: asyncio.AbstractEventLoop, first: float
    ) -> None:
        self._redemption = redemption
        self._hold = hold
        self._loop = loop
        self._stopping = anyio.Event()
        self._task: asyncio.Task[None] | None = None
        self._timer = loop.call_later(first, self._start)

    def _start(self) -> None:
        self._task = self._loop.create_task(self._redemption._keep_alive(self._hold, self._stopping))

    async def stop(self) -> None:
        """Stop beating; wait for a renewal in progress, so none lands after the run's end."""
        self._timer.cancel()
        task = self._task
        if task is None:
            return
        self._stopping.set()
        with anyio.CancelScope(shield=True):
            try:
                await task
            except Exception:  # its own failures are logged; the run's outcome must not change
                logger.exception("the lease heartbeat of %s failed", self._hold.request.id)

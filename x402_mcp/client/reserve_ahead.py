"""Reserving a tool's last price while its unpaid call is out, so the reservation's disk sync
overlaps the round trip instead of following it.

`PayingClient` uses the reservation only when the challenge asks for the same payment
(`same_charge`); otherwise it discards it. A reservation the budget refuses is not an error
here: the check after the probe decides, and says why, as it would have without the guess.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal

import anyio
from mcp_types import CallToolResult

from ..core.wire import PaymentRequirements
from .budget import Budget
from .store import SpendStore
from .window import Window

logger = logging.getLogger("x402_mcp.client")


async def probe_while_reserving(
    probe: Callable[[], Awaitable[CallToolResult]],
    store: SpendStore,
    budget: Budget,
    guess: PaymentRequirements,
    price: Decimal,
    *,
    tool: str,
    window: Window,
    clock: Callable[[], float],
) -> tuple[CallToolResult, str | None]:
    """Run `probe` (the unpaid call of `tool`) while `guess` is reserved beside it; returns the
    result and the reservation's id, or None when the budget (or the file) refused it."""
    spend_id = store.new_id()
    reserved = False
    probe_error: Exception | None = None

    async def hold() -> None:
        nonlocal reserved
        try:
            await store.reserve(
                budget, guess, usd=price, tool=tool, now=clock(), spend_id=spend_id, window=window
            )
            reserved = True
        except Exception:
            logger.debug("no reservation ahead of the probe of %r", tool, exc_info=True)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(hold)
            try:
                result = await probe()
            except Exception as exc:  # raised as itself below, not inside a group
                probe_error = exc
    except BaseException:
        # Cancelled: the reservation may have committed without `hold` hearing of it.
        with anyio.CancelScope(shield=True):
            await store.discard(spend_id)
        raise
    if probe_error is not None:
        if reserved:
            with anyio.CancelScope(shield=True):
                await store.discard(spend_id)
        raise probe_error
    return result, spend_id if reserved else None


def same_charge(reserved: PaymentRequirements, asked: PaymentRequirements) -> bool:
    """Whether a reservation made for `reserved` records exactly the payment `asked` is
    (the challenge's own fields, such as a request id in `extra`, differ every time)."""
    return (
        reserved.scheme,
        reserved.network,
        reserved.asset.lower(),
        reserved.amount,
        reserved.pay_to.lower(),
        reserved.max_timeout_seconds,  # the reserved window was cut to it
    ) == (
        asked.scheme,
        asked.network,
        asked.asset.lower(),
        asked.amount,
        asked.pay_to.lower(),
        asked.max_timeout_seconds,
    )

"""What `x402-mcp call` may pay without being told: stored limits, and asking a person.

Limits given on the command line are kept in the budget file and hold for later
calls until changed: a flag left out keeps the stored limit, `none` clears it.
With no per-call limit at all (neither given nor stored), a call pays up to
`ASK_ABOVE` on its own; above that it asks on a terminal, and without one it
refuses unless `--yes` (or a `--max`) says to pay.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TextIO

import anyio.to_thread

from ..core.money import format_dollars, from_atomic
from ..core.networks import Asset
from ..core.text import shown
from ..core.wire import PaymentRequirements
from .budget import Confirm
from .errors import NotConfirmed
from .store import SpendStore

ASK_ABOVE = Decimal("0.10")
"""With no `--max`, the most one call pays without asking."""

CLEAR = "none"
"""A limit flag's value that removes the stored limit."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits as `Budget` takes them: dollars as text, or None for no limit."""

    per_call: str | None = None
    total: str | None = None
    per_day: str | None = None
    payees: tuple[str, ...] | None = None


def _merged(given: str | None, stored: str | None) -> str | None:
    if given is None:
        return stored
    return None if given.strip().lower() == CLEAR else given


async def merge_limits(
    store: SpendStore,
    budget: str,
    *,
    per_call: str | None,
    total: str | None,
    per_day: str | None,
    payees: Sequence[str] | None,
) -> Limits:
    """The limits a call runs under: each given one, else the one stored for `budget`
    (`none` clears it). The caller stores the result when it opens the budget."""
    stored = await store.limits(budget) or (None, None, None, None)
    stored_payees = tuple(stored[3].split(",")) if stored[3] else None
    if payees is None:
        merged_payees = stored_payees
    elif [p.strip().lower() for p in payees] == [CLEAR]:
        merged_payees = None
    else:
        merged_payees = tuple(payees)
    return Limits(
        per_call=_merged(per_call, stored[0]),
        total=_merged(total, stored[1]),
        per_day=_merged(per_day, stored[2]),
        payees=merged_payees,
    )


def confirm_above_default(
    tool: str,
    assets: Iterable[Asset],
    *,
    per_call_set: bool,
    yes: bool,
    ask: Callable[[str], bool] | None = None,
) -> Confirm:
    """The `confirm` callback of `x402-mcp call`.

    With a per-call limit (`per_call_set`) the budget alone decides. Without one, a price up
    to `ASK_ABOVE` is paid; above it `yes` pays, a terminal is asked (`ask`, by default the
    controlling terminal's stdin and stderr), and without a terminal it is refused.
    """
    by_address = {asset.address.lower(): asset for asset in assets}

    async def confirm(requirement: PaymentRequirements) -> bool:
        if per_call_set or yes:
            return True
        asset = by_address.get(requirement.asset.lower())
        decimals, symbol = (asset.decimals, asset.symbol) if asset else (6, "USDC")
        price = from_atomic(int(requirement.amount), decimals)
        if price <= ASK_ABOVE:
            return True
        question = (
            f"Pay {format_dollars(price)} {symbol} to {requirement.pay_to} on {requirement.network}"
            f" for tool {shown(tool)}? [y/N] "
        )
        asker = ask if ask is not None else (_ask_terminal if _interactive() else None)
        if asker is None:
            raise NotConfirmed(
                f"{shown(tool)} costs {format_dollars(price)}, above the {format_dollars(ASK_ABOVE)} a "
                "call pays without asking, and there is no terminal to ask on; "
                f"pass --max {price} (or --yes) to pay it"
            )
        if not await anyio.to_thread.run_sync(asker, question):
            raise NotConfirmed(
                f"you declined to pay {format_dollars(price)} for {shown(tool)}; nothing was paid"
            )
        return True

    return confirm


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def _ask_terminal(question: str, stream_in: TextIO | None = None, stream_out: TextIO | None = None) -> bool:
    out = stream_out or sys.stderr
    out.write(question)
    out.flush()
    answer = (stream_in or sys.stdin).readline()
    if not answer:
        out.write("\n")
    return answer.strip().lower() in ("y", "yes")

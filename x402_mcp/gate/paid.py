"""`@paid`: marks a tool as paid, says how much it costs, and hands the framework the gate's guard."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

from ..core.money import USDC_DECIMALS
from ..core.pricing import (
    PAID_ATTRIBUTE,
    REQUEST_ID_ARGUMENT,
    PaidTool,
    Price,
    PriceFunction,
    SettleOrder,
    check_fixed_price,
    paid_spec,
)
from ..core.text import shown
from ..errors import ConfigurationError
from . import guard as _guard
from .guard import guard

F = TypeVar("F", bound=Callable[..., Any])


def paid(
    price: Price | PriceFunction,
    *,
    description: str | None = None,
    settle: SettleOrder | str = SettleOrder.BEFORE,
    rule: str | None = None,
    overlap: bool = False,
) -> Callable[[F], F]:
    """Mark an MCP tool as paid.

    Use it above or below `@server.tool()`. The server's `Payments` (its gate) does the
    rest; without it the tool refuses every call with an error naming the missing
    `MCPServer(..., extensions=[payments])` / `payments.install(mcp)`, and never runs
    for free. The tool keeps its name, docstring, signature and schemas.

    Args:
        price: dollars as a decimal string (`"0.05"`), or a function called with
            the tool's arguments (by keyword) that returns one.
        description: what the payment buys, shown to the payer; defaults to
            the tool's name.
        settle: `"before"` (default) settles an agent's payment before the
            tool runs; `"after"` follows the x402 spec's order (verify, run,
            settle on success, withhold output if settlement fails).
        rule: for a price function, its rule in words (`"$0.001 per word, at
            least $0.01"`): `tools/list` shows it in the description and as
            `_meta["x402-mcp/price"]["rule"]`, since no single amount can be shown
            before the arguments are known. A fixed price shows itself and takes none.
        overlap: with `settle="after"`, send the settlement while the tool runs, so a
            call takes about the longer of the two instead of their sum. Only for a tool
            that is safe to run again (idempotent or read-only): a run that fails after
            its payment settled leaves the payer charged, with the request kept `paid`
            so that a retry with its `payment_request_id` runs it without a second
            charge. Output is still withheld until the payment settles.

    Raises:
        TypeError: when used bare (`@paid` instead of `@paid(price=...)`).
        ConfigurationError: for a float, zero, negative or malformed fixed price, one
            finer than USDC's smallest unit ($0.000001), a rule that is empty, too long,
            has control characters or goes with a fixed price, `overlap` without
            `settle="after"`, or a function that is `@paid` already.
    """
    if inspect.iscoroutinefunction(price):
        # Price functions are plain functions; an async one is the tool itself.
        raise TypeError('@paid needs a price: write @paid(price="0.05"), not bare @paid')
    if not callable(price):
        check_fixed_price(price, USDC_DECIMALS)
    if rule is not None:
        _check_rule(rule, dynamic=callable(price))
    order = SettleOrder(settle)
    if not isinstance(overlap, bool):
        raise ConfigurationError(f"overlap takes True or False, not {shown(overlap, 40)}")
    if overlap and order is not SettleOrder.AFTER:
        raise ConfigurationError(
            'overlap=True goes with settle="after"; with "before" the payment settles before the tool runs'
        )
    spec = PaidTool(price=price, description=description, settle=order, rule=rule, overlap=overlap)

    def mark(fn: F) -> F:
        if paid_spec(fn) is not None:
            raise ConfigurationError(
                f"{getattr(fn, '__name__', 'this tool')!r} is @paid already; a tool takes one @paid(...)"
            )
        _check_own_parameters(fn)
        # The framework gets (or, with @paid above its decorator, is pointed at) the guard.
        return cast(F, guard(fn, PAID_ATTRIBUTE, spec))

    return mark


MAX_RULE_LENGTH = 200


def _check_own_parameters(fn: Callable[..., Any]) -> None:
    """Refuse a tool with a parameter of the name the gate adds (and takes off the call before
    the tool runs): every call would fail, the argument never reaching it."""
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # no signature to read: the framework will say so itself
        return
    if REQUEST_ID_ARGUMENT in parameters:
        raise ConfigurationError(
            f"{getattr(fn, '__name__', 'this tool')!r} has a parameter named {REQUEST_ID_ARGUMENT!r}, which "
            "the payment gate adds to every paid tool and removes before the tool runs; rename it"
        )


def _check_rule(rule: object, *, dynamic: bool) -> None:
    if not dynamic:
        raise ConfigurationError("rule= describes a price function; a fixed price is shown as it is")
    if not isinstance(rule, str) or not rule.strip():
        raise ConfigurationError(f"rule must be a non-empty string of words, not {rule!r}")
    if len(rule) > MAX_RULE_LENGTH:
        raise ConfigurationError(f"rule is {len(rule)} characters long; keep it to {MAX_RULE_LENGTH}")
    if not rule.isprintable():
        raise ConfigurationError("rule must be one line of printable text (no control characters)")


# How many references a function @paid is written right above has, on this interpreter.
_guard.calibrate(paid(price="1"))

"""Prices: what `@paid` attaches to a tool (`PaidTool`), and a price read as exact atomic units.

The decorator itself, which hands the framework the gate's guard, is `x402_mcp.gate.paid`.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

from ..errors import ConfigurationError, InvalidPrice
from .money import format_usd, parse_usd, places, to_atomic
from .text import shown
from .wire import UINT256_LIMIT

PAID_ATTRIBUTE = "__x402_paid__"

REQUEST_ID_ARGUMENT = "payment_request_id"
"""The optional argument the gate adds to a paid tool (and takes off before it runs)."""

Price = str | Decimal | int
PriceFunction = Callable[..., Price]

MAX_PRICE_TEXT = 64
"""A price is a short decimal string; longer text from a price function is refused unread."""

_MAX_PRICE_DIGITS = 120
"""More significant digits than any price below 2**256 atomic units can need (78 + decimals)."""


class SettleOrder(enum.StrEnum):
    """When an agent's `_meta` payment is settled relative to running the tool.

    BEFORE (the default) settles first, so the tool never runs unpaid and a
    slow tool cannot outlive the authorization window. AFTER is the x402 MCP
    spec's order: verify, run, settle only if the tool succeeded, and withhold
    the output when settlement fails.
    """

    BEFORE = "before"
    AFTER = "after"


@dataclass(frozen=True, slots=True)
class PaidTool:
    """What `@paid` attached to a tool function."""

    price: Price | PriceFunction
    description: str | None = None
    settle: SettleOrder = SettleOrder.BEFORE
    rule: str | None = None
    """A price function's rule in words ("$0.001 per word, at least $0.01"), shown in `tools/list`."""
    overlap: bool = False
    """With `settle=AFTER`: settle while the tool runs (for tools safe to run again, see `paid`)."""

    @property
    def is_dynamic(self) -> bool:
        return callable(self.price)

    def atomic_price(self, arguments: Mapping[str, Any], decimals: int) -> int:
        """The price of one call with `arguments`, in atomic units.

        `arguments` are the call's arguments as the tool receives them (already
        checked against its input schema); a price function gets, by keyword,
        those among them it names (all of them when it takes `**kwargs`).

        Raises:
            InvalidPrice: when the price function cannot take the arguments, raises,
                or gives something that is not an exact decimal price above zero, in
                whole atomic units of the token, below 2**256 atomic units.
        """
        price: object = self.price
        if callable(price):
            price = _call_price_function(price, arguments)
        atomic = _atomic(price, decimals)
        if atomic == 0:
            raise InvalidPrice(
                f"the price is {shown(price, 40)}, which is zero: a paid call must cost more than $0"
            )
        return atomic


def check_fixed_price(price: Price, decimals: int) -> int:
    """A fixed price checked as `@paid` takes it: its atomic units of a `decimals` token.

    Raises:
        ConfigurationError: a float, malformed or negative price; zero (a free tool takes
            no @paid); one finer than the token's smallest unit or too large to pay.
    """
    if isinstance(price, str) and len(price) > MAX_PRICE_TEXT:
        raise ConfigurationError(f"price {shown(price, 40)} is too long; write it as a decimal like '0.05'")
    value = parse_usd(price)
    if value == 0:
        raise ConfigurationError(
            f"price {shown(price, 40)} is zero: a payment of $0 is no payment. "
            "For a free tool, leave out @paid"
        )
    if places(value) > decimals:
        smallest = format_usd(1, decimals)
        raise ConfigurationError(
            f"price {shown(price, 40)} is finer than the token's smallest unit, {smallest} "
            f"({decimals} decimal places); make it a whole multiple of {smallest}"
        )
    try:
        return _atomic(price, decimals)
    except InvalidPrice as exc:
        raise ConfigurationError(str(exc)) from None


def paid_spec(fn: Callable[..., Any]) -> PaidTool | None:
    """The `PaidTool` attached by `@paid`, if any."""
    spec = getattr(fn, PAID_ATTRIBUTE, None)
    return spec if isinstance(spec, PaidTool) else None


def _call_price_function(function: PriceFunction, arguments: Mapping[str, Any]) -> object:
    """Call a price function with the arguments it names; its failures become `InvalidPrice`."""
    try:
        signature: inspect.Signature | None = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin or C callable without a readable signature
        signature = None
    if signature is None or any(
        parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in signature.parameters.values()
    ):
        chosen = dict(arguments)
    else:
        chosen = {name: value for name, value in arguments.items() if name in signature.parameters}
        try:
            signature.bind(**chosen)
        except TypeError as exc:
            raise InvalidPrice(
                f"the price function could not be called with the tool's arguments {sorted(arguments)}: {exc}"
            ) from exc
    try:
        return function(**chosen)
    except Exception as exc:  # whatever the operator's function raises, the call must get an answer
        raise InvalidPrice(f"the price function raised {type(exc).__name__}") from exc


def _atomic(price: object, decimals: int) -> int:
    """`price` in atomic units, or `InvalidPrice` naming why it is not a price we can quote."""
    if isinstance(price, bool):
        raise InvalidPrice(f"the price is {price}, a boolean; a price is a decimal string such as '0.05'")
    if isinstance(price, str) and len(price) > MAX_PRICE_TEXT:
        raise InvalidPrice(
            f"the price is {len(price)} characters of text; a price is a short decimal string such as '0.05'"
        )
    try:
        value = parse_usd(price)  # type: ignore[arg-type]  # parse_usd names any other type
    except ConfigurationError as exc:
        raise InvalidPrice(shown(str(exc), 160)) from None
    # Magnitude and digits first: a price like "1e999999999" is short, but its integer is not.
    if value and (value.adjusted() + decimals > 77 or len(value.as_tuple().digits) > _MAX_PRICE_DIGITS):
        raise _beyond_uint256(price)
    with localcontext() as context:
        context.prec = _MAX_PRICE_DIGITS + decimals  # exact: nothing below is rounded
        try:
            atomic = to_atomic(price, decimals)  # type: ignore[arg-type]  # parse_usd took it
        except ConfigurationError as exc:
            raise InvalidPrice(shown(str(exc), 160)) from None
    if atomic >= UINT256_LIMIT:
        raise _beyond_uint256(price)
    return atomic


def _beyond_uint256(price: object) -> InvalidPrice:
    return InvalidPrice(
        f"the price {shown(price, 40)} is at or beyond 2**256 atomic units, which no token can move"
    )

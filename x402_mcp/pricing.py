"""`@paid`: marks a tool as paid and says how much it costs."""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any, TypeVar, cast

from . import guard as _guard
from .errors import ConfigurationError, InvalidPrice
from .guard import guard
from .money import USDC_DECIMALS, format_usd, parse_usd, places, to_atomic
from .text import shown
from .wire import UINT256_LIMIT

PAID_ATTRIBUTE = "__x402_paid__"

REQUEST_ID_ARGUMENT = "payment_request_id"
"""The optional argument the gate adds to a paid tool (and takes off before it runs)."""

Price = str | Decimal | int
PriceFunction = Callable[..., Price]
F = TypeVar("F", bound=Callable[..., Any])

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


def _check_rule(rule: object, *, dynamic: bool) -> None:
    if not dynamic:
        raise ConfigurationError("rule= describes a price function; a fixed price is shown as it is")
    if not isinstance(rule, str) or not rule.strip():
        raise ConfigurationError(f"rule must be a non-empty string of words, not {rule!r}")
    if len(rule) > MAX_RULE_LENGTH:
        raise ConfigurationError(f"rule is {len(rule)} characters long; keep it to {MAX_RULE_LENGTH}")
    if not rule.isprintable():
        raise ConfigurationError("rule must be one line of printable text (no control characters)")


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


# How many references a function @paid is written right above has, on this interpreter.
_guard.calibrate(paid(price="1"))

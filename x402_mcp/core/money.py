"""Prices as exact decimals and atomic token units; never floats."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from ..errors import ConfigurationError

USDC_DECIMALS = 6


def parse_usd(price: str | Decimal | int) -> Decimal:
    """Read a price given by a person: `"0.05"`, `"$0.05"`, `Decimal("0.05")` or `1`.

    Raises:
        ConfigurationError: for a float, a negative or non-finite value, or text
            that is not a number.
    """
    if isinstance(price, bool | float):
        raise ConfigurationError(
            f"price {price!r} is a float; give it as a decimal string such as '0.05' so it stays exact"
        )
    if isinstance(price, Decimal):
        value = price
    elif isinstance(price, int):
        value = Decimal(price)
    elif isinstance(price, str):
        text = price.strip().removeprefix("$").strip()
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise ConfigurationError(f"price {price!r} is not a decimal number of dollars") from None
    else:
        raise ConfigurationError(f"price must be a decimal string, not {type(price).__name__}")
    if not value.is_finite() or value < 0:
        raise ConfigurationError(f"price {price!r} must be a finite amount of at least zero")
    return value


def to_atomic(price: str | Decimal | int, decimals: int = USDC_DECIMALS) -> int:
    """Dollars to atomic units: `to_atomic("0.05") == 50_000` for USDC. Exact at any size.

    Raises:
        ConfigurationError: when the price has more decimal places than the token.
    """
    value = parse_usd(price)
    if places(value) > decimals:
        raise ConfigurationError(
            f"price {price!r} has more than {decimals} decimal places, the smallest unit of the token"
        )
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # parse_usd let through finite values only
    whole = int("".join(map(str, digits)) or "0")
    shift = exponent + decimals
    # Exact integer arithmetic: Decimal's own scaling rounds past the context's 28 digits.
    scale = int(10 ** abs(shift))
    return whole * scale if shift >= 0 else whole // scale


def places(value: Decimal) -> int:
    """The fewest decimal places that write finite `value` exactly: `places(Decimal("0.050")) == 2`."""
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"{value} is not a finite number")
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing)) if any(digits) else 0


def from_atomic(amount: int, decimals: int = USDC_DECIMALS) -> Decimal:
    """Atomic units to an exact decimal without trailing zeros: `from_atomic(50_000) == Decimal("0.05")`.

    Exact at any size (no rounding to the decimal context's precision); `str()` of the
    result may still use an exponent (`str(Decimal("0.0000001"))` is `1E-7`): show amounts
    to people with `format_usd`, `format_amount` or `format_dollars`, never `str()`.
    """
    if amount == 0:
        return Decimal(0)
    text = str(abs(amount))
    # Trailing zeros of the fraction are dropped; those of the whole part are digits.
    dropped = min(len(text) - len(text.rstrip("0")), decimals)
    digits = tuple(int(digit) for digit in text[: len(text) - dropped])
    return Decimal((1 if amount < 0 else 0, digits, dropped - decimals))


def format_decimal(value: Decimal | int, min_places: int = 0) -> str:
    """`value` as a person reads it: plain digits (never an exponent), thousands separated,
    exact (never rounded), with at least `min_places` decimal places.

    `format_decimal(Decimal("2E+1")) == "20"`, `format_decimal(Decimal("1234.5"), 2) == "1,234.50"`.
    """
    exact = Decimal(value)
    return f"{exact:,.{max(min_places, places(exact))}f}"


def format_dollars(value: Decimal | int) -> str:
    """A dollar amount as a person reads it: `format_dollars(Decimal("1234.5")) == "$1,234.50"`;
    at least two decimal places, never rounded, never an exponent."""
    text = format_decimal(value, 2)
    return f"-${text[1:]}" if text.startswith("-") else f"${text}"


def format_usd(amount: int, decimals: int = USDC_DECIMALS) -> str:
    """Atomic units of a dollar token in dollars: `format_usd(50_000) == "$0.05"`,
    `format_usd(20_000_000) == "$20.00"` (see `format_dollars`)."""
    return format_dollars(from_atomic(amount, decimals))


def format_amount(amount: int, decimals: int = USDC_DECIMALS, symbol: str | None = None) -> str:
    """Atomic units as the token's own amount: `format_amount(20_000_000, 6, "USDC") == "20 USDC"`,
    `format_amount(1, 6) == "0.000001"`; exact, plain, thousands separated."""
    text = format_decimal(from_atomic(amount, decimals))
    return text if symbol is None else f"{text} {symbol}"

"""Prices as exact decimals and atomic token units; never floats."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from .errors import ConfigurationError

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
    """Dollars to atomic units: `to_atomic("0.05") == 50_000` for USDC.

    Raises:
        ConfigurationError: when the price has more decimal places than the token.
    """
    value = parse_usd(price)
    scaled = value.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise ConfigurationError(
            f"price {price!r} has more than {decimals} decimal places, the smallest unit of the token"
        )
    return int(scaled)


def from_atomic(amount: int, decimals: int = USDC_DECIMALS) -> Decimal:
    """Atomic units to an exact decimal: `from_atomic(50_000) == Decimal("0.05")`."""
    return Decimal(amount).scaleb(-decimals).normalize() if amount else Decimal(0)


def format_usd(amount: int, decimals: int = USDC_DECIMALS) -> str:
    """`format_usd(50_000) == "$0.05"`; at least two decimal places, never rounded."""
    value = from_atomic(amount, decimals)
    exponent = value.as_tuple().exponent
    places = max(2, -exponent if isinstance(exponent, int) else 2)
    return f"${value:,.{places}f}"

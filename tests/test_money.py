from decimal import Decimal

import pytest

from x402_mcp.core.money import format_usd, from_atomic, parse_usd, to_atomic
from x402_mcp.errors import ConfigurationError


@pytest.mark.parametrize(
    ("price", "atomic"),
    [
        ("0.05", 50_000),
        ("$0.05", 50_000),
        (" 1 ", 1_000_000),
        (Decimal("0.000001"), 1),
        (2, 2_000_000),
        ("0", 0),
    ],
)
def test_prices_become_exact_atomic_units(price: str | Decimal | int, atomic: int) -> None:
    assert to_atomic(price) == atomic


@pytest.mark.parametrize(
    ("price", "message"),
    [
        (0.05, "is a float"),
        ("0.0000001", "more than 6 decimal places"),
        ("-1", "at least zero"),
        ("NaN", "finite"),
        ("five cents", "not a decimal number"),
        (True, "is a float"),
    ],
)
def test_bad_prices_are_refused_with_a_reason(price: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        to_atomic(price)  # type: ignore[arg-type]


def test_atomic_units_read_back_exactly() -> None:
    assert from_atomic(50_000) == Decimal("0.05")
    assert from_atomic(0) == 0
    assert parse_usd("0.10") == Decimal("0.10")


@pytest.mark.parametrize(
    ("atomic", "text"), [(50_000, "$0.05"), (1, "$0.000001"), (1_234_500_000, "$1,234.50"), (0, "$0.00")]
)
def test_format_usd_never_rounds(atomic: int, text: str) -> None:
    assert format_usd(atomic) == text

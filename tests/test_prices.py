"""Prices are checked at decoration and amounts are written for people in one way: plain
decimals, thousands separated, exact (x402_mcp.core.money, x402_mcp.core.pricing)."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from x402_mcp import paid
from x402_mcp.core.challenge import human_text, payment_sentence
from x402_mcp.core.money import (
    format_amount,
    format_decimal,
    format_dollars,
    format_usd,
    from_atomic,
    places,
    to_atomic,
)
from x402_mcp.core.pricing import check_fixed_price, paid_spec
from x402_mcp.errors import ConfigurationError, InvalidPrice


def amounts() -> list[tuple[int, int]]:
    """(atomic amount, decimals) from a millionth of a dollar to 10**12 dollars, 0..18 decimals."""
    chosen = random.Random(402)
    found: list[tuple[int, int]] = []
    for decimals in range(19):
        top = 10 ** (12 + decimals)
        found += [
            (amount, decimals) for amount in (1, 9, 10, 999, 1000, 10**decimals, 20 * 10**decimals, top)
        ]
        found += [(chosen.randrange(1, top + 1), decimals) for _ in range(300)]
        found += [
            (chosen.randrange(1, 10**6) * 10 ** chosen.randrange(0, 12 + decimals), decimals)
            for _ in range(60)
        ]
    return found


def read_back(text: str) -> Decimal:
    return Decimal(text.removeprefix("-").removeprefix("$").split(" ")[0].replace(",", ""))


def test_every_amount_is_written_plain_separated_and_reads_back_exactly() -> None:
    for amount, decimals in amounts():
        exact = from_atomic(amount, decimals)
        assert to_atomic(exact, decimals) == amount, (amount, decimals)
        for text in (
            format_usd(amount, decimals),
            format_amount(amount, decimals, "USDC"),
            format_amount(amount, decimals),
            format_dollars(exact),
            format_decimal(exact),
        ):
            assert "E" not in text and "e" not in text, text
            assert read_back(text) == exact, (text, amount, decimals)
            whole = text.removeprefix("$").split(" ")[0].split(".")[0]
            groups = whole.split(",")
            assert all(len(g) == 3 for g in groups[1:]) and 1 <= len(groups[0]) <= 3, text
        assert to_atomic(read_back(format_usd(amount, decimals)), decimals) == amount
        assert len(format_usd(amount, decimals).split(".")[1]) >= 2


@pytest.mark.parametrize(
    ("atomic", "decimals", "usd", "tokens"),
    [
        (20_000_000, 6, "$20.00", "20 USDC"),
        (10_000_000, 6, "$10.00", "10 USDC"),
        (1_234_567_890_000, 6, "$1,234,567.89", "1,234,567.89 USDC"),
        (1, 6, "$0.000001", "0.000001 USDC"),
        (100, 0, "$100.00", "100 USDC"),
        (
            10**30 + 1,
            18,
            "$1,000,000,000,000.000000000000000001",
            "1,000,000,000,000.000000000000000001 USDC",
        ),
    ],
)
def test_tens_of_dollars_and_more_are_never_written_with_an_exponent(
    atomic: int, decimals: int, usd: str, tokens: str
) -> None:
    assert format_usd(atomic, decimals) == usd
    assert format_amount(atomic, decimals, "USDC") == tokens
    assert str(from_atomic(atomic, decimals)) == tokens.split(" ")[0].replace(",", "")


def test_places_counts_only_what_is_needed() -> None:
    assert [places(Decimal(v)) for v in ("0.050", "2E+1", "0", "1.000001", "1E-7")] == [2, 0, 0, 6, 7]


@pytest.mark.parametrize("price", ["0", "0.00", "$0", Decimal(0), 0, "0E+3"])
def test_a_zero_price_is_refused_at_decoration(price: object) -> None:
    with pytest.raises(ConfigurationError, match="leave out @paid"):
        paid(price=price)  # type: ignore[arg-type]


@pytest.mark.parametrize("price", ["0.0000001", "1.0000005", Decimal("0.00000001"), "1E-7", "$12.3456789"])
def test_a_price_finer_than_usdc_is_refused_at_decoration(price: object) -> None:
    with pytest.raises(ConfigurationError, match=r"smallest unit, \$0\.000001 \(6 decimal places\)"):
        paid(price=price)  # type: ignore[arg-type]


@pytest.mark.parametrize("price", ["0.000001", "0.0000010", "20", "1E+3", "1234567.89"])
def test_prices_usdc_can_carry_are_taken(price: str) -> None:
    spec = paid_spec(paid(price=price)(lambda: None))
    assert spec is not None and spec.atomic_price({}, 6) == to_atomic(price)


def test_fixed_prices_are_checked_again_against_the_configured_token() -> None:
    assert check_fixed_price("0.05", 2) == 5
    with pytest.raises(ConfigurationError, match=r"smallest unit, \$0\.01 \(2 decimal places\)"):
        check_fixed_price("0.005", 2)
    assert check_fixed_price("0.0000001", 18) == 10**11


@pytest.mark.parametrize(("given", "why"), [("0", "zero"), ("0.0000001", "more than 6 decimal places")])
def test_a_price_function_giving_zero_or_less_than_a_unit_is_an_invalid_price(given: str, why: str) -> None:
    spec = paid_spec(paid(price=lambda: given)(lambda: None))
    assert spec is not None
    with pytest.raises(InvalidPrice, match=why):
        spec.atomic_price({}, 6)


def test_the_challenge_writes_twenty_dollars_plainly() -> None:
    from x402_mcp.core.challenge import Offer
    from x402_mcp.core.networks import resolve_network
    from x402_mcp.ledger.base import PaymentRequest

    network = resolve_network("base-sepolia")
    assert network.usdc is not None
    offer = Offer(network, network.usdc, "0x209693Bc6afc0C5328bA36FaF03C514EF312287C", "http://pay.test", ())
    request = PaymentRequest(
        id="pr_1",
        tool="report",
        price=12_345_000_000,
        asset=network.usdc.address,
        network=network.caip2,
        pay_to=offer.pay_to,
        caller=None,
        created_at=0.0,
        expires_at=600.0,
        max_timeout_seconds=600,
    )
    for text in (human_text(request, offer, now=0), payment_sentence(request, offer)):
        assert "$12,345.00" in text and "E+" not in text
    assert "12,345 USDC" in human_text(request, offer, now=0)

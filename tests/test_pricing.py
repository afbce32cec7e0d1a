import inspect
from decimal import Decimal
from typing import Any

import pytest

from x402_mcp import paid
from x402_mcp.core.pricing import SettleOrder, paid_spec
from x402_mcp.errors import ConfigurationError, InvalidPrice


def test_paid_returns_a_guard_that_looks_exactly_like_the_function() -> None:
    def tool(x: int, *, note: str = "") -> int:
        """Doubles x."""
        return x

    marked = paid(price="0.05")(tool)
    assert marked is not tool and marked.__wrapped__ is tool  # type: ignore[attr-defined]
    assert (marked.__name__, marked.__qualname__, marked.__doc__, marked.__module__) == (
        tool.__name__,
        tool.__qualname__,
        tool.__doc__,
        tool.__module__,
    )
    assert inspect.signature(marked) == inspect.signature(tool)
    assert marked.__annotations__ == tool.__annotations__
    assert paid_spec(tool) is None, "the function itself stays as it was"
    spec = paid_spec(marked)
    assert spec is not None and spec.atomic_price({}, 6) == 50_000 and spec.settle is SettleOrder.BEFORE


def test_price_functions_get_the_arguments() -> None:
    @paid(price=lambda pages: f"{pages}.00", settle="after")
    def tool(pages: int) -> str:
        return ""

    spec = paid_spec(tool)
    assert spec is not None and spec.is_dynamic
    assert spec.atomic_price({"pages": 3}, 6) == 3_000_000
    with pytest.raises(ConfigurationError, match="could not be called"):
        spec.atomic_price({"other": 1}, 6)


def test_misuse_is_refused_early() -> None:
    with pytest.raises(ConfigurationError, match="float"):
        paid(price=0.05)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a price"):

        @paid  # type: ignore[arg-type]
        async def tool() -> None: ...

    with pytest.raises(ValueError, match="sometime"):
        paid(price="1", settle="sometime")


def _priced(function: object, arguments: dict[str, object] | None = None) -> int:
    spec = paid_spec(paid(price=function)(lambda: None))  # type: ignore[arg-type]
    assert spec is not None
    return spec.atomic_price(arguments or {}, 6)


def test_a_price_function_gets_only_the_arguments_it_names_unless_it_takes_all() -> None:
    assert _priced(lambda pages: str(pages), {"pages": 2, "quality": "draft"}) == 2_000_000
    assert _priced(lambda **all: str(len(all)), {"pages": 2, "quality": "draft"}) == 2_000_000


def test_a_raising_price_function_is_an_invalid_price_naming_the_exception_only() -> None:
    def secretive(pages: int) -> str:
        raise KeyError("token sk_live_123")

    with pytest.raises(InvalidPrice, match="the price function raised KeyError") as raised:
        _priced(secretive, {"pages": 1})
    assert "sk_live" not in str(raised.value)
    assert isinstance(raised.value.__cause__, KeyError)  # the cause stays for the log


def test_a_price_function_missing_an_argument_is_named() -> None:
    with pytest.raises(InvalidPrice, match="missing a required argument: 'colour'"):
        _priced(lambda pages, colour: "1", {"pages": 1})


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ("abc", "not a decimal number"),
        ("-0.01", "at least zero"),
        ("0.0000001", "more than 6 decimal places"),
        ("NaN", "finite"),
        (None, "not NoneType"),
        ([1], "not list"),
        (0.1, "is a float"),
        (False, "a boolean"),
        ("7" * 65, "65 characters of text"),
        (2**256 // 10**6 + 1, "beyond 2\\*\\*256"),
        ("1e72", "beyond 2\\*\\*256"),
        ("1e999999999", "beyond 2\\*\\*256"),
        (Decimal("1." + "0" * 200 + "1"), "beyond 2\\*\\*256|decimal places"),
    ],
)
def test_what_is_not_a_price_is_named(returned: object, message: str) -> None:
    with pytest.raises(InvalidPrice, match=message) as raised:
        _priced(lambda: returned)
    assert len(str(raised.value)) < 200


def test_the_largest_quotable_price_is_exact() -> None:
    largest = 2**256 - 1

    def dollars(atomic: int) -> Decimal:  # 78 digits: more than a default decimal context keeps
        return Decimal(f"{atomic // 10**6}.{atomic % 10**6:06d}")

    assert _priced(lambda: dollars(largest)) == largest
    with pytest.raises(InvalidPrice, match="beyond"):
        _priced(lambda: dollars(largest + 1))
    assert _priced(lambda: "0.000001") == 1
    assert _priced(lambda: "$1.5") == 1_500_000


@pytest.mark.parametrize("framework", ["mcpserver", "fastmcp"])
@pytest.mark.parametrize("order", ["paid-above", "paid-below"])
def test_a_tool_with_its_own_payment_request_id_parameter_is_refused_at_decoration(
    framework: str, order: str
) -> None:
    # The gate adds `payment_request_id` to a paid tool and removes it before the tool runs:
    # a tool of its own with that parameter could never receive it, so every call would fail.
    from fastmcp import FastMCP
    from mcp.server import MCPServer

    def lookup(payment_request_id: str) -> str:
        return payment_request_id

    register = MCPServer("s").tool() if framework == "mcpserver" else FastMCP("s").tool()

    def below(fn: Any) -> Any:  # @paid sees the function before the framework does
        return register(paid(price="0.01")(fn))

    def above(fn: Any) -> Any:  # @paid sees what the framework registered
        return paid(price="0.01")(register(fn))

    decorate = below if order == "paid-below" else above
    with pytest.raises(ConfigurationError, match=r"parameter named 'payment_request_id'.*rename it"):
        decorate(lookup)

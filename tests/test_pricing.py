import pytest

from x402_mcp import paid
from x402_mcp.errors import ConfigurationError
from x402_mcp.pricing import SettleOrder, paid_spec


def test_paid_marks_the_function_and_returns_it_unchanged() -> None:
    def tool(x: int) -> int:
        return x

    marked = paid(price="0.05")(tool)
    assert marked is tool
    spec = paid_spec(tool)
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

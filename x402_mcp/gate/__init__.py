"""The framework-neutral gate: price, challenge, pay, redeem, refuse (one place).

`Gate` holds the configuration and the money path; `ToolCall` is what a
framework door (`x402_mcp.frameworks`) hands it for each call of a paid tool.
`Payments` (the gate with both doors, which imports the frameworks) lives in `x402_mcp.gate.payments`.
"""

from typing import Any

from .call import OfferLink, ToolCall
from .core import Gate
from .quoting import ELICITATION_WAIT_SECONDS

__all__ = ["ELICITATION_WAIT_SECONDS", "Gate", "OfferLink", "ToolCall"]


def __getattr__(name: str) -> Any:
    # `from x402_mcp.gate import Payments` was the import before the gate was split;
    # it still works, loaded on demand so that loading the gate never loads the doors.
    if name == "Payments":
        from .payments import Payments

        return Payments
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

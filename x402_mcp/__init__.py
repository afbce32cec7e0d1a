"""x402-mcp: charge for MCP tools in USDC over x402.

```python
from mcp.server import MCPServer
from x402_mcp import Payments, paid

payments = Payments(pay_to="0xYourWallet", network="base-sepolia", settlement=...)
server = MCPServer("research", extensions=[payments])

@server.tool()
@paid(price="0.05")
async def research_query(question: str) -> str: ...
```

On FastMCP 4: `mcp = fastmcp.FastMCP("research")`, then `payments.install(mcp)`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .core.networks import Asset, Network, SolanaNetwork
    from .core.pricing import PaidTool, SettleOrder
    from .core.states import StateConflict
    from .errors import (
        ConfigurationError,
        InsufficientFunds,
        InvalidPrice,
        InvalidSignature,
        LedgerError,
        MalformedPayment,
        PaymentError,
        PaymentExpired,
        PaymentInProgress,
        PaymentMismatch,
        PaymentNotYetValid,
        PaymentRejected,
        PaymentReplayed,
        SettlementError,
        TooManyOpenRequests,
        UnknownPaymentRequest,
        X402MCPError,
    )
    from .frameworks.payments import Payments
    from .gate.paid import paid
    from .settlement.solana import Solana

# Where each public name lives. Loaded on first use (PEP 562): `import x402_mcp` stays cheap,
# and a name's module (web3, Starlette, the gate) loads only when a program asks for it.
_ERRORS = (
    "ConfigurationError InsufficientFunds InvalidPrice InvalidSignature LedgerError MalformedPayment "
    "PaymentError PaymentExpired PaymentInProgress PaymentMismatch PaymentNotYetValid PaymentRejected "
    "PaymentReplayed SettlementError TooManyOpenRequests UnknownPaymentRequest X402MCPError"
)
_HOMES: dict[str, str] = {
    "Asset": ".core.networks",
    "Network": ".core.networks",
    "SolanaNetwork": ".core.networks",
    "PaidTool": ".core.pricing",
    "SettleOrder": ".core.pricing",
    "paid": ".gate.paid",
    "Payments": ".frameworks.payments",
    "StateConflict": ".core.states",
    "Solana": ".settlement.solana",
    **dict.fromkeys(_ERRORS.split(), ".errors"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name == "paid":
        # The doors register how `@paid` above a tool decorator reaches the tool (gate.guard).
        importlib.import_module(".frameworks", __name__)
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value  # the next look-up is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "Asset",
    "ConfigurationError",
    "InsufficientFunds",
    "InvalidPrice",
    "InvalidSignature",
    "LedgerError",
    "MalformedPayment",
    "Network",
    "PaidTool",
    "PaymentError",
    "PaymentExpired",
    "PaymentInProgress",
    "PaymentMismatch",
    "PaymentNotYetValid",
    "PaymentRejected",
    "PaymentReplayed",
    "Payments",
    "SettleOrder",
    "SettlementError",
    "Solana",
    "SolanaNetwork",
    "StateConflict",
    "TooManyOpenRequests",
    "UnknownPaymentRequest",
    "X402MCPError",
    "paid",
]

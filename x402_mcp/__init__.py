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
from .gate.paid import paid
from .gate.payments import Payments
from .settlement.solana import Solana

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

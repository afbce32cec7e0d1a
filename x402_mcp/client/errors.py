"""What the paying client raises, under the package's root `X402MCPError`.

```
X402MCPError
├── PaymentDeclined          the client refused to pay; nothing was signed
│   ├── BudgetExceeded       a limit of the budget (`limit`: per_call, total or per_day)
│   ├── PayeeNotAllowed      the payee is not on the budget's allowlist
│   ├── NotConfirmed         the confirm callback said no
│   └── NoPayableOption      no offered requirement uses an allowed network and asset
└── PaymentFailed            the server says a signed payment was not taken (refused, or
                             settlement failed); it keeps counting until the chain shows its
                             authorization expired unused
```
"""

from __future__ import annotations

from decimal import Decimal

from mcp_types import CallToolResult

from ..core.money import format_dollars
from ..errors import X402MCPError


class PaymentDeclined(X402MCPError):
    """The client refused to pay for a tool call. Nothing was signed and no money moved."""


class BudgetExceeded(PaymentDeclined):
    """Paying would take the budget past one of its limits.

    `limit` names it (`"per_call"`, `"total"` or `"per_day"`); `allowed` is the
    limit in dollars, `would_be` what the spending would have come to.
    """

    def __init__(self, limit: str, *, price: Decimal, allowed: Decimal, would_be: Decimal) -> None:
        self.limit = limit
        self.price = price
        self.allowed = allowed
        self.would_be = would_be
        if limit == "per_call":
            message = (
                f"the price {format_dollars(price)} is above the budget's per_call limit of "
                f"{format_dollars(allowed)}"
            )
        else:
            span = "in the last 24 hours" if limit == "per_day" else "in total"
            message = (
                f"paying {format_dollars(price)} would bring spending {span} to {format_dollars(would_be)}, "
                f"above the budget's {limit} limit of {format_dollars(allowed)}"
            )
        super().__init__(message)


class PayeeNotAllowed(PaymentDeclined):
    """The payee is not on the budget's `payees` allowlist."""


class NotConfirmed(PaymentDeclined):
    """The application's `confirm` callback declined the payment."""


class NoPayableOption(PaymentDeclined):
    """None of the offered payment requirements may be paid by this client."""


class PaymentFailed(X402MCPError):
    """The server says it did not take a signed payment (it refused it, or its settlement failed).

    The payment keeps counting against the budget: the server holds the signed
    authorization and could have settled it anyway. It is freed only once the
    chain shows the authorization expired unused (`PayingClient(chain=...)`).
    `result` is the server's answer, `reason` its x402 reason code when it gave one.
    The client never retries on its own with a new signature: calling again is the application's decision.
    """

    def __init__(self, message: str, *, result: CallToolResult, reason: str | None = None) -> None:
        super().__init__(message)
        self.result = result
        self.reason = reason

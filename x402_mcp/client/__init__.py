"""The paying side: an MCP client that pays for tools on its own, within a budget.

```python
from x402_mcp.client import Budget, PayingClient

budget = Budget(per_call="0.10", per_day="2", total="20")
async with PayingClient("http://127.0.0.1:8000/mcp", account=wallet, budget=budget) as client:
    answer = await client.call_tool("research_query", {"question": "…"})
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .budget import Budget, default_budget_file
from .errors import (
    BudgetExceeded,
    NoPayableOption,
    NotConfirmed,
    PayeeNotAllowed,
    PaymentDeclined,
    PaymentFailed,
)
from .offers import find_payment_required
from .onchain import AuthorizationChain, Reconciled
from .payer import OwnedSmartAccount, PaymentSigner
from .results import PaidResult
from .spend_records import Spend, Spending, SpendState
from .store import SpendStore

if TYPE_CHECKING:
    from .paying import PayingClient

__all__ = [
    "AuthorizationChain",
    "Budget",
    "BudgetExceeded",
    "NoPayableOption",
    "NotConfirmed",
    "OwnedSmartAccount",
    "PaidResult",
    "PayeeNotAllowed",
    "PayingClient",
    "PaymentDeclined",
    "PaymentFailed",
    "PaymentSigner",
    "Reconciled",
    "Spend",
    "SpendState",
    "SpendStore",
    "Spending",
    "default_budget_file",
    "find_payment_required",
]


def __getattr__(name: str) -> Any:
    # PayingClient is an MCP SDK 2.x client: loaded on first use, so the signing helpers here
    # (`client.payer`) also import beside MCP SDK 1.x, where a 1.x server's tests use them.
    if name == "PayingClient":
        from .paying import PayingClient

        return PayingClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

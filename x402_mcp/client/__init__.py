"""The paying side: an MCP client that pays for tools on its own, within a budget.

```python
from x402_mcp.client import Budget, PayingClient

budget = Budget(per_call="0.10", per_day="2", total="20")
async with PayingClient("http://127.0.0.1:8000/mcp", account=wallet, budget=budget) as client:
    answer = await client.call_tool("research_query", {"question": "…"})
```
"""

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
from .paying import PayingClient
from .results import PaidResult
from .spend_records import Spend, Spending, SpendState
from .store import SpendStore

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

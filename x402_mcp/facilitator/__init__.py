"""Our own x402 facilitator: the standard HTTP API over any settlement backend.

```python
app = facilitator_app(
    LocalSettlement.from_rpc(rpc_url, gas_key, network="eip155:8453"),
    token=os.environ["X402_FACILITATOR_TOKEN"],
    payees=["0xYourWallet"],
)
```

One self-hosted facilitator (and one gas key) can serve many MCP servers, which
then use `FacilitatorSettlement(url)`. `x402-mcp facilitator` runs it.
"""

from .access import TOKEN_VARIABLE
from .app import (
    AMOUNT_BELOW_MINIMUM,
    ASSET_NOT_ALLOWED,
    DEFAULT_MIN_AMOUNT,
    MAX_BODY_BYTES,
    PAYEE_NOT_ALLOWED,
    facilitator_app,
)

__all__ = [
    "AMOUNT_BELOW_MINIMUM",
    "ASSET_NOT_ALLOWED",
    "DEFAULT_MIN_AMOUNT",
    "MAX_BODY_BYTES",
    "PAYEE_NOT_ALLOWED",
    "TOKEN_VARIABLE",
    "facilitator_app",
]

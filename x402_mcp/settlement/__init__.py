"""Settlement backends: local on-chain settlement, and remote x402 facilitators.

```python
from x402_mcp.settlement import FacilitatorSettlement, LocalSettlement, cdp_facilitator
```

`LocalSettlement` (your own node and gas key) is loaded on first use, so importing a
facilitator backend never pays for web3's settlement machinery it does not need.
"""

from typing import TYPE_CHECKING, Any

from .base import Settlement
from .cdp import CDP_FACILITATOR_URL, CdpAuth, cdp_facilitator
from .facilitator import (
    DEFAULT_FACILITATOR_URL,
    BearerToken,
    FacilitatorAuth,
    FacilitatorSettlement,
    StaticHeaders,
    default_settlement,
)

if TYPE_CHECKING:
    from .local import LocalSettlement

__all__ = [
    "CDP_FACILITATOR_URL",
    "DEFAULT_FACILITATOR_URL",
    "BearerToken",
    "CdpAuth",
    "FacilitatorAuth",
    "FacilitatorSettlement",
    "LocalSettlement",
    "Settlement",
    "StaticHeaders",
    "cdp_facilitator",
    "default_settlement",
]


def __getattr__(name: str) -> Any:
    # The one lazy name: `from x402_mcp.settlement import LocalSettlement` imports it here.
    if name == "LocalSettlement":
        from .local import LocalSettlement

        return LocalSettlement
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

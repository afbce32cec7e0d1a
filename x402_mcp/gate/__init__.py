"""The framework-neutral gate: price, challenge, pay, redeem, refuse (one place).

`Gate` holds the configuration and the money path; `ToolCall` is what a
framework door (`x402_mcp.frameworks`) hands it for each call of a paid tool.
`Payments` (the gate that picks its framework's door) lives one layer up, in
`x402_mcp.frameworks.payments`.
"""

from .call import OfferLink, ToolCall
from .core import Gate
from .quoting import ELICITATION_WAIT_SECONDS

__all__ = ["ELICITATION_WAIT_SECONDS", "Gate", "OfferLink", "ToolCall"]

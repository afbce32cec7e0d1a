"""The settlement protocol every backend implements: verify, settle, supported.

Declared in `x402_mcp.schemes.backends`, next to the schemes that call it (backends
sit above them in the layers); re-exported here, where backends are written.
"""

from __future__ import annotations

from ..schemes.backends import ChainLookup, Settlement, SolanaSettlement, backend_failures
from ..schemes.protocol import OnChain

__all__ = ["ChainLookup", "OnChain", "Settlement", "SolanaSettlement", "backend_failures"]

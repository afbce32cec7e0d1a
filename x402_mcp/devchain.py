"""The embedded development chain, by its public name: `from x402_mcp.devchain import DevChain`.

Development only, like `x402_mcp.chains` where it lives: an offline py-evm chain with our
test USDC, for tests, samples and demos; a production server never imports it.
"""

from .chains.devchain import DEV_CHAIN_ID, DevChain, SnapshotId, TokenChain

__all__ = ["DEV_CHAIN_ID", "DevChain", "SnapshotId", "TokenChain"]

"""Sample paid MCP servers that run offline (embedded DevChain by default).

Each module builds its server from a `Payments` (`build(payments)`) and runs
over stdio when executed (`python servers/textkit.py`), ready for Claude
Desktop: `x402-mcp bundle textkit` builds a one-click bundle (`textkit.mcpb`), and
`x402-mcp claude-config textkit` prints a config entry to paste instead.
`x402-mcp serve textkit --devnet` serves one over streamable HTTP on a local
anvil chain instead, which outside wallets and agents can pay.
"""

SAMPLES = ("textkit", "mathlab", "passphrase")

"""Development chains (DevChain, devnet) and the contracts placed on them; never imported by
`import x402_mcp`."""

"""The `exact` scheme: an EIP-3009 authorization on EVM chains, a signed transfer on Solana."""

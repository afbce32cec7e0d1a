"""x402's `exact` scheme: one signed payment of exactly the price, settled once.

`evm.ExactEvm` (EIP-3009 `transferWithAuthorization` on an EVM network) and
`solana.ExactSvm` (a signed SPL transfer, completed by a facilitator) implement
`schemes.protocol.Scheme`; `answers` holds what the two read alike from a backend.
"""

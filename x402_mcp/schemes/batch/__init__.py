"""The x402 `batch-settlement` scheme on EVM, its pure parts: wire models, EIP-712 digests,
voucher verification and the spec's verification rules as decisions (no I/O here)."""

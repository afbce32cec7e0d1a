"""The x402 `batch-settlement` scheme: deposits into an escrow channel, cumulative vouchers,
batched claims and cooperative refunds."""

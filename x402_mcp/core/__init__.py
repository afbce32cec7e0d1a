"""The sans-IO core: money, networks, addresses, the x402 wire formats, EVM signing, prices,
the challenge, the payment states, and the small pure helpers they share.

Nothing here does I/O; every layer above may import it.
"""

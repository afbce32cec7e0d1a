"""Payment schemes: how a payload is matched to what was asked and checked before settling.

`exact` (EVM and Solana) is the first scheme.
"""

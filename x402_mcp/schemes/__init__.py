"""Payment schemes as plug-ins: the protocol each implements and the registry that picks one.

`exact` (EVM EIP-3009 and Solana) lives in `schemes.exact`; it is imported by whoever
builds a server's registry, never by this package, so that the protocol stays at
the bottom of the layers it serves.
"""

from __future__ import annotations

from .protocol import (
    Correction,
    Escrowed,
    Matched,
    OnChain,
    PaidAlready,
    Quote,
    RefundRequested,
    Refusal,
    Scheme,
    Settleable,
    Settled,
    Valid,
    Verdict,
)
from .registry import SchemeRegistry, scheme_and_network

__all__ = [
    "Correction",
    "Escrowed",
    "Matched",
    "OnChain",
    "PaidAlready",
    "Quote",
    "RefundRequested",
    "Refusal",
    "Scheme",
    "SchemeRegistry",
    "Settleable",
    "Settled",
    "Valid",
    "Verdict",
    "scheme_and_network",
]

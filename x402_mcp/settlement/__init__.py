"""Settlement backends: local on-chain settlement, and remote x402 facilitators."""

from .base import Settlement
from .cdp import CDP_FACILITATOR_URL, CdpAuth, cdp_facilitator
from .facilitator import (
    DEFAULT_FACILITATOR_URL,
    BearerToken,
    FacilitatorAuth,
    FacilitatorSettlement,
    StaticHeaders,
    default_settlement,
)

__all__ = [
    "CDP_FACILITATOR_URL",
    "DEFAULT_FACILITATOR_URL",
    "BearerToken",
    "CdpAuth",
    "FacilitatorAuth",
    "FacilitatorSettlement",
    "Settlement",
    "StaticHeaders",
    "cdp_facilitator",
    "default_settlement",
]

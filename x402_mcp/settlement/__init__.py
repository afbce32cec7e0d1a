"""Settlement backends: local on-chain settlement, and (later) remote facilitators."""

from .base import Settlement

__all__ = ["Settlement"]

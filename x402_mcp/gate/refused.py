"""A refused payment, as the gate raises it to the answer that words it."""

from __future__ import annotations

from collections.abc import Sequence

from ..core.wire import PaymentRequirements
from ..errors import PaymentError
from ..ledger.base import PaymentRequest


class Refused(Exception):
    """A `PaymentError`, with the request it concerns when that one is still payable."""

    def __init__(
        self,
        error: PaymentError,
        request: PaymentRequest | None,
        corrections: Sequence[PaymentRequirements] = (),
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.request = request
        self.corrections = tuple(corrections)
        """A scheme's corrected requirements, to challenge with in place of its own (a stale voucher)."""

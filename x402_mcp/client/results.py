"""What a paid call gave back: `PaidResult`, and the server's settlement response read out of
a tool result (or why the server says it did not take the payment).

Apart from `paying` because reading a result is pure (no budget, no network): what counts as a
receipt decides whether a payment is marked spent or keeps counting as uncertain.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal

from mcp_types import CallToolResult, TextContent

from ..core.challenge import META_PAYMENT_RESPONSE
from ..core.wire import PaymentRequired, PaymentRequirements, SettleResponse


@dataclass(frozen=True, slots=True)
class PaidResult:
    """A tool's result, and what was paid for it.

    `receipt` is the server's settlement response (`_meta["x402/payment-response"]`)
    and `cost` the dollars charged to the budget; for a free call both are empty.
    `spend_id` names the payment in the budget file.
    """

    result: CallToolResult
    receipt: SettleResponse | None = None
    requirement: PaymentRequirements | None = None
    cost: Decimal = Decimal(0)
    spend_id: str | None = None

    @property
    def paid(self) -> bool:
        return self.requirement is not None

    @property
    def is_error(self) -> bool:
        return bool(self.result.is_error)

    @property
    def text(self) -> str:
        return "\n".join(block.text for block in self.result.content if isinstance(block, TextContent))


def receipt_of(result: CallToolResult) -> SettleResponse | None:
    """The settlement response in `result`, or None when there is none or it is not one: too
    large, or a transaction that is not a transaction hash."""
    raw = (result.meta or {}).get(META_PAYMENT_RESPONSE)
    if raw is None and isinstance(result.structured_content, dict):
        # The official Python server reports a failed settlement inside structuredContent.
        raw = result.structured_content.get(META_PAYMENT_RESPONSE)
    if not isinstance(raw, dict) or len(json.dumps(raw, default=str)) > _MAX_RECEIPT_CHARS:
        return None
    try:
        receipt = SettleResponse.model_validate(raw)
    except ValueError:
        return None
    if receipt.success and not _TX_HASH.fullmatch(receipt.transaction or ""):
        return None  # counted as spent all the same, as a result without a receipt is
    return receipt


_MAX_RECEIPT_CHARS = 16_384
"""A settlement response is a few hundred characters; anything far larger is not one."""

_TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")


def failure_reason(
    result: CallToolResult, receipt: SettleResponse | None, refused: PaymentRequired | None
) -> str:
    """Why the server says it did not take the payment, in its own words where it gave any."""
    if receipt is not None and not receipt.success:
        return receipt.error_reason or receipt.error_message or "settlement failed"
    if refused is not None and refused.error:
        return refused.error
    texts = [block.text for block in result.content if isinstance(block, TextContent)]
    return texts[-1] if texts else "refused"

"""What the server says back, built from its records: a receipt's `extra`, the corrective
challenge's requirements, and the claim and sweep payloads a facilitator settles. Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...core.wire import PaymentRequirements
from .decisions import Corrective
from .digests import ClaimEntry
from .records import ChannelRecord


def receipt_extra(record: ChannelRecord, *, charged_amount: int | None) -> dict[str, Any]:
    """The `extra` of a receipt (`_meta["x402/payment-response"]`): what this call was charged
    (None for a refund, whose receipt states none) and the channel as it now stands."""
    extra: dict[str, Any] = {"channelState": record.channel_state().dump()}
    if charged_amount is not None:
        extra["chargedAmount"] = str(charged_amount)
    return extra


def corrected_requirements(requirements: PaymentRequirements, correction: Corrective) -> PaymentRequirements:
    """Our requirements with the channel's state and latest voucher in `extra` (a copy: the
    offer itself is never changed), for the corrective challenge's `accepts[]`."""
    extra = {**requirements.extra, "channelState": correction.channel_state.dump()}
    if correction.voucher_state is not None:
        extra["voucherState"] = correction.voucher_state.dump()
    return requirements.model_copy(update={"extra": extra})


def claim_entries(records: Sequence[ChannelRecord]) -> list[ClaimEntry]:
    """The rows a claim of `records` presents: each channel up to its charges, under its latest
    voucher (what `claim_batch_digest` covers, in this order)."""
    return [ClaimEntry(r.channel_id, r.signed_max_claimable, r.charged) for r in records]


def claim_payload(records: Sequence[ChannelRecord], *, authorizer_signature: str | None) -> dict[str, Any]:
    """A facilitator `settle` payload claiming `records` (`claimWithSignature`). Without
    `authorizer_signature` the facilitator, holding the receiver-authorizer key, signs."""
    if any(record.signature is None for record in records):
        raise ValueError("a channel without a voucher has nothing to claim")
    claims = [
        {
            "voucher": {"channel": r.config.dump(), "maxClaimableAmount": str(r.signed_max_claimable)},
            "signature": r.signature,
            "totalClaimed": str(r.charged),
        }
        for r in records
    ]
    payload: dict[str, Any] = {"type": "claim", "claims": claims}
    if authorizer_signature is not None:
        payload["claimAuthorizerSignature"] = authorizer_signature
    return payload


def sweep_payload(receiver: str, token: str) -> dict[str, Any]:
    """A facilitator `settle` payload sweeping everything claimed for `receiver` in `token`."""
    return {"type": "settle", "receiver": receiver, "token": token}

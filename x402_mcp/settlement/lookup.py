"""What became of an EIP-3009 authorization, read from the chain alone.

Both backends that can read the chain answer `ChainLookup.lookup` with this:
`LocalSettlement` through its relayer, `FacilitatorSettlement` through a reader
of its own `rpc_url`. It blocks: callers run it in a worker thread.
"""

from __future__ import annotations

from hexbytes import HexBytes

from ..contracts.eip3009 import (
    AUTHORIZATION_CANCELED_TOPIC,
    AUTHORIZATION_USED_TOPIC,
    authorization_state_calldata,
    authorization_topics,
    decode_bool,
    transfer_logged,
)
from ..wire import AnyPaymentPayload, PaymentRequirements
from .base import OnChain
from .relayer import ChainReader

__all__ = ["lookup_authorization"]


def lookup_authorization(
    reader: ChainReader,
    payload: AnyPaymentPayload,
    requirements: PaymentRequirements,
    *,
    lookback_blocks: int,
) -> OnChain:
    """Whether `payload`'s authorization reached the chain, and in which transaction.

    Reads `authorizationState(from, nonce)` from the required token; when it is
    used, finds the `AuthorizationUsed` logs (within `lookback_blocks` of the
    head) and accepts a transaction only if it succeeded and logged
    `Transfer(from, payTo, value)` of at least the required amount. Otherwise
    the authorization was `"canceled"` (an `AuthorizationCanceled` log) or
    `"used_elsewhere"`.

    Raises:
        SettlementError: the node is on another chain than `reader`'s network.
        Exception: whatever the node raises when it fails (callers map it).
    """
    reader.ensure_chain()
    auth = payload.payload.authorization
    asset = requirements.asset
    if not decode_bool(reader.call(asset, authorization_state_calldata(auth.from_, auth.nonce))):
        return OnChain("unused")
    value = int(auth.value)
    pays_requirements = value >= int(requirements.amount) and auth.to.lower() == requirements.pay_to.lower()
    used = authorization_topics(AUTHORIZATION_USED_TOPIC, auth.from_, auth.nonce)
    for log in reader.logs(asset, used, lookback_blocks=lookback_blocks) if pays_requirements else []:
        tx_hash = HexBytes(log["transactionHash"])
        receipt = reader.receipt(tx_hash)
        if (
            receipt is not None
            and receipt["status"] == 1
            and transfer_logged(
                receipt["logs"], token=asset, sender=auth.from_, recipient=auth.to, value=value
            )
        ):
            return OnChain("settled", tx_hash=tx_hash.to_0x_hex(), amount=value)
    canceled = authorization_topics(AUTHORIZATION_CANCELED_TOPIC, auth.from_, auth.nonce)
    if reader.logs(asset, canceled, lookback_blocks=lookback_blocks):
        return OnChain("canceled")
    return OnChain("used_elsewhere")

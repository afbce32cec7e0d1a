"""What became of an EIP-3009 authorization, read from the chain alone.

Both backends that can read the chain answer `ChainLookup.lookup` with this:
`LocalSettlement` through its relayer, `FacilitatorSettlement` through a reader
of its own `rpc_url`; the latter also checks a facilitator's claim that one
transaction settled a payment (`settlement_problem`). Both block: callers run
them in a worker thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hexbytes import HexBytes

from ..core.text import shown
from ..core.wire import AnyPaymentPayload, PaymentRequirements, parse_uint
from .base import OnChain
from .contracts.eip3009 import (
    AUTHORIZATION_CANCELED_TOPIC,
    AUTHORIZATION_USED_TOPIC,
    authorization_state_calldata,
    authorization_topics,
    decode_bool,
    transfer_logged,
)
from .reader import ChainReader

__all__ = ["Disagreement", "is_tx_hash", "lookup_authorization", "payment_problem", "settlement_problem"]

_TX_HASH = re.compile(r"0x[0-9a-fA-F]{64}")


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
    value = parse_uint(auth.value, "authorization.value")
    pays_requirements = (
        value >= parse_uint(requirements.amount, "amount") and auth.to.lower() == requirements.pay_to.lower()
    )
    used = authorization_topics(AUTHORIZATION_USED_TOPIC, auth.from_, auth.nonce)
    for log in reader.logs(asset, used, lookback_blocks=lookback_blocks) if pays_requirements else []:
        tx_hash = HexBytes(log["transactionHash"])
        receipt = reader.receipt(tx_hash)
        if (
            receipt is not None
            and receipt["status"] == 1
            and payment_problem(
                receipt["logs"],
                asset=asset,
                authorizer=auth.from_,
                nonce=auth.nonce,
                pay_to=auth.to,
                value=value,
            )
            is None
        ):
            return OnChain("settled", tx_hash=tx_hash.to_0x_hex(), amount=value)
    canceled = authorization_topics(AUTHORIZATION_CANCELED_TOPIC, auth.from_, auth.nonce)
    if reader.logs(asset, canceled, lookback_blocks=lookback_blocks):
        return OnChain("canceled")
    return OnChain("used_elsewhere")


def is_tx_hash(text: object) -> bool:
    """Whether `text` is an EVM transaction hash: 0x and 64 hex digits."""
    return isinstance(text, str) and _TX_HASH.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class Disagreement:
    """Why the chain does not bear a settlement claim out; `pending` while it may still (not mined yet)."""

    message: str
    pending: bool = False


def settlement_problem(
    reader: ChainReader, payload: AnyPaymentPayload, requirements: PaymentRequirements, tx_hash: object
) -> Disagreement | None:
    """What is wrong with the claim that `tx_hash` settled `payload` for `requirements`; None if nothing.

    The claim holds when the transaction is mined, succeeded, and its own logs
    show, from the required token, `AuthorizationUsed(from, nonce)` of exactly
    this authorization and `Transfer(from, payTo, amount)` of exactly the price.
    A transaction not mined (yet) is a `pending` disagreement: the caller decides
    how long to wait for it.

    Raises:
        SettlementError: the node is on another chain than `reader`'s network.
        Exception: whatever the node raises when it fails (callers map it).
    """
    if not isinstance(tx_hash, str) or not is_tx_hash(tx_hash):
        return Disagreement(f"{shown(repr(tx_hash))} is not a transaction hash")
    reader.ensure_chain()
    receipt = reader.receipt(HexBytes(tx_hash))
    if receipt is None:
        return Disagreement(f"transaction {tx_hash} is not mined", pending=True)
    if receipt["status"] != 1:
        return Disagreement(f"transaction {tx_hash} failed (reverted)")
    auth = payload.payload.authorization
    problem = payment_problem(
        receipt["logs"],
        asset=requirements.asset,
        authorizer=auth.from_,
        nonce=auth.nonce,
        pay_to=requirements.pay_to,
        value=parse_uint(requirements.amount, "amount"),
    )
    return None if problem is None else Disagreement(f"transaction {tx_hash} {problem}")


def payment_problem(
    logs: Iterable[Mapping[str, Any]], *, asset: str, authorizer: str, nonce: str, pay_to: str, value: int
) -> str | None:
    """What the logs of one successful transaction lack to show it paid with this
    authorization; None when they show it.

    Both must come from the token `asset`: `AuthorizationUsed(authorizer, nonce)`,
    the use of exactly this authorization, and `Transfer(authorizer, pay_to, value)`.
    A receipt's status alone proves nothing about which transfer happened. The
    answer completes "transaction <hash> …".
    """
    if not _logged(logs, asset, authorization_topics(AUTHORIZATION_USED_TOPIC, authorizer, nonce)):
        return f"did not use the authorization of {authorizer} with nonce {nonce}"
    if not transfer_logged(logs, token=asset, sender=authorizer, recipient=pay_to, value=value):
        return f"logged no Transfer of {value} units of {asset} from {authorizer} to {pay_to}"
    return None


def _logged(logs: Iterable[Mapping[str, Any]], address: str, topics: list[str]) -> bool:
    wanted = [bytes.fromhex(topic[2:]) for topic in topics]
    return any(
        str(log["address"]).lower() == address.lower() and [bytes(topic) for topic in log["topics"]] == wanted
        for log in logs
    )

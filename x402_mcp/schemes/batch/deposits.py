"""A deposit's own checks, the part that shows without the chain: its amount, its transfer
method, its validity window and its ERC-3009 signature (a contract wallet's is the chain's)."""

from __future__ import annotations

from collections.abc import Collection

from ...core.wire import PaymentRequirements
from . import reasons
from .constants import ERC3009_DEPOSIT_COLLECTOR_ADDRESS, PERMIT2_DEPOSIT_COLLECTOR_ADDRESS
from .decisions import NeedsChain, Refuse, SignatureCheck
from .digests import deposit_nonce, receive_authorization_digest, recover
from .wire import BatchExtra, DepositPayload, same_address

#: An authorization must stay valid this long after we check it, for the deposit to land.
VALIDITY_MARGIN_SECONDS = 6


def deposit_problem(
    payload: DepositPayload,
    requirements: PaymentRequirements,
    extra: BatchExtra,
    chain_id: int,
    *,
    now: int,
    min_deposit: int | None,
    verified_on_chain: Collection[bytes],
) -> Refuse | NeedsChain | None:
    """What is wrong with a deposit's own part, as far as it shows without the chain."""
    deposit, config, cid = payload.deposit, payload.channel_config, payload.voucher.channel_id
    amount = int(deposit.amount)
    if amount == 0:
        return Refuse(reasons.DEPOSIT_PAYLOAD, "The deposit amount must be above zero.")
    if min_deposit is not None and amount < min_deposit:
        return Refuse(reasons.DEPOSIT_BELOW_MIN_DEPOSIT, f"Deposit at least {min_deposit} atomic units.")
    permit2 = deposit.authorization.permit2_authorization
    method = extra.asset_transfer_method or "eip3009"
    if permit2 is not None:
        if method != "permit2":
            return Refuse(reasons.ERC3009_AUTHORIZATION_REQUIRED, "This server takes ERC-3009 deposits.")
        if not same_address(permit2.spender, PERMIT2_DEPOSIT_COLLECTOR_ADDRESS):
            return Refuse(
                reasons.PERMIT2_INVALID_SPENDER, "The Permit2 spender must be the deposit collector."
            )
        if permit2.permitted.amount != deposit.amount or not same_address(
            permit2.permitted.token, config.token
        ):
            return Refuse(reasons.PERMIT2_AMOUNT_MISMATCH, "The Permit2 permit is not for the deposit.")
        if int(permit2.deadline) < now + VALIDITY_MARGIN_SECONDS:
            return Refuse(reasons.PERMIT2_DEADLINE_EXPIRED, "The Permit2 deadline has passed.")
        if permit2.witness.channel_id.lower() != cid.lower() or not same_address(permit2.from_, config.payer):
            return Refuse(reasons.DEPOSIT_PAYLOAD, "The Permit2 witness is not this channel's payer and id.")
        return None  # the Permit2 signature is the chain's to check, when the deposit is simulated
    erc3009 = deposit.authorization.erc3009_authorization
    assert erc3009 is not None  # the wire model holds exactly one
    if method != "eip3009":
        return Refuse(reasons.PERMIT2_AUTHORIZATION_REQUIRED, "This server takes Permit2 deposits.")
    if int(erc3009.valid_before) < now + VALIDITY_MARGIN_SECONDS:
        return Refuse(reasons.VALID_BEFORE_EXPIRED, "The deposit authorization has expired (validBefore).")
    if int(erc3009.valid_after) > now:
        return Refuse(
            reasons.VALID_AFTER_IN_FUTURE, "The deposit authorization is not valid yet (validAfter)."
        )
    digest = receive_authorization_digest(
        payer=config.payer,
        collector=ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
        value=amount,
        valid_after=int(erc3009.valid_after),
        valid_before=int(erc3009.valid_before),
        nonce=deposit_nonce(cid, erc3009.salt),
        token_name=extra.name,
        token_version=extra.version,
        chain_id=chain_id,
        token=config.token,
    )
    signer = recover(digest, erc3009.signature)
    if (signer is not None and "0x" + signer.hex() == config.payer.lower()) or digest in verified_on_chain:
        return None
    reason = reasons.INVALID_RECEIVE_AUTHORIZATION_SIGNATURE
    return NeedsChain(signatures=(SignatureCheck(config.payer, digest, erc3009.signature, reason),))

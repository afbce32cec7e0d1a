"""The spec's verification rules as pure decisions: facts in, a decision out, no I/O.

`decide` reads a payload against our requirements, the channel's record (if we have one)
and the contract's state (a snapshot, if read), and answers one of:

- `Accept`: run the tool; charge at most `max_charge` when it succeeds (`charge`);
- `AcceptRefund`: do not run the tool; return `amount` of the escrow to the payer;
- `Corrective`: the voucher's cumulative base is not ours; answer with our channel state
  (`invalid_batch_settlement_evm_cumulative_amount_mismatch`) so the client resyncs;
- `Refuse`: one of the spec's `invalid_batch_settlement_evm_*` reasons;
- `NeedsChain`: the answer needs the chain (a contract wallet's EIP-1271 signature, or the
  channel's on-chain state when we hold no record); ask it, then decide again with the
  digests it confirmed in `verified_on_chain` or the snapshot it returned.

The checks run in the order of the official server scheme and facilitator, so a voucher
both would refuse gets the same reason from us: channel id, cumulative base, channel
config, signature, then balance and the claimed floor.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import NotRequired, TypedDict, Unpack

from ...core.evm import chain_id_of
from ...core.wire import PaymentRequirements
from . import reasons
from .constants import MAX_WITHDRAW_DELAY_SECONDS, MIN_WITHDRAW_DELAY_SECONDS, SCHEME
from .decisions import Accept, AcceptRefund, Corrective, Decision, NeedsChain, Refuse, SignatureCheck
from .deposits import deposit_problem
from .digests import channel_id, recover, voucher_digest
from .records import ChainSnapshot, ChannelRecord, Charge
from .wire import (
    BatchExtra,
    BatchPayload,
    BatchPaymentPayload,
    ChannelConfig,
    ChannelState,
    DepositPayload,
    RefundPayload,
    Voucher,
    is_zero_address,
    parse_batch_extra,
    same_address,
)

__all__ = [
    "Accept",
    "AcceptRefund",
    "ChargeTerms",
    "Corrective",
    "Decision",
    "NeedsChain",
    "Refuse",
    "SignatureCheck",
    "charge",
    "config_problem",
    "decide",
    "reserve",
    "voucher_signature",
]


def config_problem(
    config: ChannelConfig, requirements: PaymentRequirements, extra: BatchExtra
) -> Refuse | None:
    """Rules 2 to 5 and the delay's range: the channel is to our receiver, authorizer, token, delay."""
    if not same_address(config.receiver, requirements.pay_to):
        return Refuse(reasons.RECEIVER_MISMATCH, "The channel's receiver is not this server's payTo.")
    if is_zero_address(config.receiver_authorizer) or not same_address(
        config.receiver_authorizer, extra.receiver_authorizer
    ):
        return Refuse(
            reasons.RECEIVER_AUTHORIZER_MISMATCH,
            "The channel's receiverAuthorizer is not the one this server announced.",
        )
    if not same_address(config.token, requirements.asset):
        return Refuse(reasons.TOKEN_MISMATCH, "The channel's token is not the asset this server accepts.")
    if config.withdraw_delay != extra.withdraw_delay:
        return Refuse(
            reasons.WITHDRAW_DELAY_MISMATCH, "The channel's withdrawDelay is not the announced one."
        )
    if not MIN_WITHDRAW_DELAY_SECONDS <= config.withdraw_delay <= MAX_WITHDRAW_DELAY_SECONDS:
        return Refuse(
            reasons.WITHDRAW_DELAY_OUT_OF_RANGE,
            f"withdrawDelay must lie between {MIN_WITHDRAW_DELAY_SECONDS} and"
            f" {MAX_WITHDRAW_DELAY_SECONDS} seconds.",
        )
    return None


def voucher_signature(
    config: ChannelConfig, voucher: Voucher, chain_id: int, verified_on_chain: Collection[bytes] = ()
) -> Refuse | NeedsChain | None:
    """Rule 6: a voucher is signed by `payerAuthorizer` (ECDSA) or, when that is zero, by the
    payer, whose contract wallet only the chain can vouch for (EIP-1271)."""
    digest = voucher_digest(voucher.channel_id, int(voucher.max_claimable_amount), chain_id)
    if not is_zero_address(config.payer_authorizer):
        signer = recover(digest, voucher.signature)
        if signer is None or "0x" + signer.hex() != config.payer_authorizer.lower():
            return Refuse(
                reasons.INVALID_VOUCHER_SIGNATURE, "The voucher is not signed by the payerAuthorizer."
            )
        return None
    if digest in verified_on_chain:
        return None
    signer = recover(digest, voucher.signature)
    if signer is not None and "0x" + signer.hex() == config.payer.lower():
        return None  # an EOA payer: what SignatureChecker would accept too
    check = SignatureCheck(config.payer, digest, voucher.signature, reasons.INVALID_VOUCHER_SIGNATURE)
    return NeedsChain(signatures=(check,))


def _funds_problem(payload: BatchPayload, chain: ChainSnapshot) -> Refuse | None:
    """Rules 7, 9 and 10: the channel exists, the ceiling fits its balance and is above the claimed."""
    ceiling = int(payload.voucher.max_claimable_amount)
    balance = chain.balance + (int(payload.deposit.amount) if isinstance(payload, DepositPayload) else 0)
    if balance == 0:
        return Refuse(reasons.CHANNEL_NOT_FOUND, "No channel with a balance has this id; deposit first.")
    if ceiling > balance:
        return Refuse(
            reasons.CUMULATIVE_EXCEEDS_BALANCE, "The voucher's ceiling exceeds the channel's balance."
        )
    refund = isinstance(payload, RefundPayload)
    if ceiling < chain.total_claimed or (not refund and ceiling == chain.total_claimed):
        return Refuse(
            reasons.CUMULATIVE_BELOW_CLAIMED, "The voucher's ceiling is not above what was claimed."
        )
    return None


def _refund_amount(payload: RefundPayload, chain: ChainSnapshot, charged: int) -> int | Refuse:
    """The amount a refund returns: what it asks, or all the escrow no charge has spent."""
    remainder = chain.balance - charged
    if remainder <= 0:
        return Refuse(reasons.REFUND_NO_BALANCE, "The channel holds nothing to refund.")
    if payload.amount is None:
        return remainder
    asked = int(payload.amount)
    if asked == 0:
        return Refuse(reasons.REFUND_AMOUNT_INVALID, "A refund amount must be above zero (or left out).")
    if asked > remainder:
        return Refuse(reasons.REFUND_NO_BALANCE, f"At most {remainder} atomic units can be refunded.")
    return asked


def decide(
    payment: BatchPaymentPayload | BatchPayload,
    requirements: PaymentRequirements,
    *,
    record: ChannelRecord | None,
    snapshot: ChainSnapshot | None = None,
    now: float,
    extra: BatchExtra | None = None,
    verified_on_chain: Collection[bytes] = (),
    min_deposit: int | None = None,
) -> Decision:
    """Decide a batch-settlement payment against our `requirements` (see the module docstring).

    `record` is our channel (None: we hold none), `snapshot` the contract's state when read
    (else the record's mirror is used), `extra` our requirements' parsed `extra` (parsed here
    when not given), `min_deposit` enforced when given.
    """
    if isinstance(payment, BatchPaymentPayload):
        accepted = payment.accepted
        if accepted.scheme != SCHEME:
            return Refuse(reasons.INVALID_SCHEME, f"The payment's scheme is not {SCHEME}.")
        if accepted.network != requirements.network:
            return Refuse(reasons.NETWORK_MISMATCH, f"This server takes payments on {requirements.network}.")
        payload: BatchPayload = payment.payload
    else:
        payload = payment
    extra = parse_batch_extra(requirements.extra) if extra is None else extra
    chain_id = chain_id_of(requirements.network)
    config, voucher = payload.channel_config, payload.voucher
    cid = voucher.channel_id.lower()
    if channel_id(config, chain_id) != cid:
        return Refuse(
            reasons.CHANNEL_ID_MISMATCH, "The voucher's channelId is not the hash of its channelConfig."
        )
    if record is not None and record.busy(now):
        return Refuse(reasons.CHANNEL_BUSY, "Another call holds this channel; retry in a moment.")
    chain = snapshot if snapshot is not None else None if record is None else record.chain
    if chain is None:
        return NeedsChain(snapshot=True)
    # Without a record the claimed total is the base (the spec's "server state loss" rule).
    base = record.charged if record is not None else chain.total_claimed
    price = int(requirements.amount)
    refund = isinstance(payload, RefundPayload)
    if int(voucher.max_claimable_amount) != (base if refund else base + price):
        state = record.channel_state() if record is not None else _state_without_record(cid, chain)
        return Corrective(state, None if record is None else record.voucher_state())
    problem = config_problem(config, requirements, extra) or voucher_signature(
        config, voucher, chain_id, verified_on_chain
    )
    if problem is None and isinstance(payload, DepositPayload):
        problem = deposit_problem(
            payload,
            requirements,
            extra,
            chain_id,
            now=int(now),
            min_deposit=min_deposit,
            verified_on_chain=verified_on_chain,
        )
    if problem is None:
        problem = _funds_problem(payload, chain)
    if problem is not None:
        return problem
    if isinstance(payload, RefundPayload):
        amount = _refund_amount(payload, chain, base)
        if isinstance(amount, Refuse):
            return amount
        return AcceptRefund(cid, config, voucher, amount, chain.refund_nonce)
    deposit = payload.deposit if isinstance(payload, DepositPayload) else None
    return Accept(payload.type, cid, config, voucher, base, price, deposit)


def _state_without_record(cid: str, chain: ChainSnapshot) -> ChannelState:
    return ChannelState(
        channel_id=cid,
        balance=str(chain.balance),
        total_claimed=str(chain.total_claimed),
        withdraw_requested_at=chain.withdraw_requested_at,
        refund_nonce=chain.refund_nonce,
        charged_cumulative_amount=str(chain.total_claimed),
    )


class ChargeTerms(TypedDict):
    """What a charge needs besides the channel and voucher: the cumulative `base` its voucher
    was checked at, the `amount` charged, the `tool` that ran, the time; the call's hold and
    request id, if it has them."""

    base: int
    amount: int
    tool: str
    now: float
    reservation: NotRequired[str | None]
    request_id: NotRequired[str | None]


def charge(
    current: ChannelRecord | None, voucher: Voucher, **terms: Unpack[ChargeTerms]
) -> tuple[ChannelRecord, Charge] | Refuse:
    """Commit one call's `amount` on the channel `current`, whose voucher was checked at `base`.

    The ledger applies this under the channel's lock: a channel charged since (`charged`
    moved off `base`) gets the corrective reason, one held by another call the busy one, and
    a charge above the voucher's ceiling is refused. On success: the record with the charge
    and the voucher as its latest (the reservation, if it was this call's, released), and
    the `Charge` line.
    """
    base, amount, now = terms["base"], terms["amount"], terms["now"]
    held = reserve(current, base=base, reservation=terms.get("reservation") or "", until=now, now=now)
    if isinstance(held, Refuse):
        return held
    if voucher.channel_id.lower() != held.channel_id.lower():
        return Refuse(reasons.CHANNEL_ID_MISMATCH, "The voucher is for another channel.")
    ceiling = int(voucher.max_claimable_amount)
    if amount < 0 or base + amount > ceiling:
        return Refuse(
            reasons.CHARGE_EXCEEDS_SIGNED_CUMULATIVE,
            f"A charge of {amount} would exceed the voucher's signed ceiling of {ceiling}.",
        )
    cumulative = base + amount
    record = replace(
        held,
        charged=cumulative,
        signed_max_claimable=ceiling,
        signature=voucher.signature,
        updated_at=now,
        reservation=None,
        reserved_until=None,
    )
    signature, request_id = voucher.signature, terms.get("request_id")
    line = Charge(held.channel_id, terms["tool"], amount, cumulative, ceiling, signature, now, request_id)
    return record, line


def reserve(
    current: ChannelRecord | None, *, base: int, reservation: str, until: float, now: float
) -> ChannelRecord | Refuse:
    """Hold the channel `current` for one call whose voucher was checked at `base`, until `until`.

    Refused, as `charge` is, when the channel is missing, held by another call, or charged
    since; a lapsed hold (its call died or overran) is taken over.
    """
    if current is None:
        return Refuse(reasons.MISSING_CHANNEL, "The channel is not in the ledger; deposit first.")
    if current.busy(now) and current.reservation != reservation:
        return Refuse(reasons.CHANNEL_BUSY, "Another call holds this channel; retry in a moment.")
    if current.charged != base:
        return Refuse(
            reasons.CUMULATIVE_AMOUNT_MISMATCH, "The channel was charged since this voucher was checked."
        )
    return replace(current, reservation=reservation, reserved_until=until, updated_at=now)

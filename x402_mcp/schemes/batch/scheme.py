"""The `batch-settlement` scheme on an EVM network: a payer deposits once into an escrow
channel, then pays call after call with cumulative vouchers that touch no chain.

How each payload is taken (the scheme protocol's verdicts, see `schemes.protocol`):

- `voucher`: the spec's rules (`rules.decide`) over the channel as the ledger holds it; the
  channel is then held for this call (`reserve_channel`), so a second voucher racing on it is
  told the channel is busy, and one checked at a stale base gets the corrective answer.
  `Escrowed`: the tool runs, and only when it succeeds does `settle` charge the channel, the
  voucher and its charge written in one ledger transaction (`record_charge`); a failed tool
  charges nothing (`release` lets go of the hold).
- `deposit`: checked the same way, then relayed to the chain *before* the tool runs (it is
  escrow, not payment: the payer's money stays the payer's until charged); the call is paid by
  the voucher it carries, as above.
- `refund`: the tool does not run; the unspent balance goes back to the payer by the receiver
  authorizer's signed `refundWithSignature` (`RefundRequested`, carried out by `settle`).
- a stale cumulative base: `Correction`, our requirements carrying `channelState` and
  `voucherState` so the client resyncs and signs again.

The scheme reads and writes the channels (they are its state, as the chain is `exact`'s); the
payment requests stay the flow's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...core.networks import Asset, Network
from ...core.text import shown
from ...core.wire import PaymentRequirements, SettleResponse, WireModel
from ...errors import ChannelConflict, PaymentError, Refusal
from ..backends import backend_failures
from ..protocol import (
    Correction,
    Escrowed,
    Matched,
    OnChain,
    Quote,
    RefundRequested,
    Settleable,
    Settled,
    Verdict,
)
from . import reasons, rules
from .answers import corrected_requirements, receipt_extra
from .chain import ChannelChain, ChannelStore
from .constants import MIN_WITHDRAW_DELAY_SECONDS, SCHEME
from .digests import channel_id, refund_digest
from .records import ChainSnapshot, ChannelRecord
from .wire import BatchPaymentPayload, DepositPayload, parse_batch_extra, parse_batch_payment

__all__ = ["DEFAULT_MIN_DEPOSIT_MULTIPLIER", "BatchSettlement"]

logger = logging.getLogger("x402_mcp")

DEFAULT_MIN_DEPOSIT_MULTIPLIER = 10
"""The `minDeposit` hint: this many calls at the quoted price (what the official server writes)."""
REQUEST_ID = "paymentRequestId"
_RECEIPT_AMOUNT = "amount"
"""In `Settled.extra`: the receipt's `amount`, what moved on chain (a deposit, a refund); a
voucher's receipt states none (its charge is `chargedAmount`)."""


class BatchSettlement:
    """The `batch-settlement` scheme on the server's EVM `network`, in `asset`.

    Args:
        receiver_authorizer: the address whose key signs this server's claims and refunds
            (announced as `extra.receiverAuthorizer`; channels must name it).
        channels: the ledger's channels.
        chain: reads channels and relays deposits.
        hold_seconds: how long a verified voucher holds its channel for the call it pays
            (a call that dies lets it go when this lapses).
        sign_refund: signs a refund digest as the receiver authorizer (hex signature); without
            it refunds are refused and payers withdraw on chain.
    """

    scheme = SCHEME

    def __init__(
        self,
        network: Network,
        asset: Asset,
        *,
        receiver_authorizer: str,
        channels: ChannelStore,
        chain: ChannelChain,
        clock: Callable[[], float],
        withdraw_delay: int = MIN_WITHDRAW_DELAY_SECONDS,
        min_deposit_multiplier: int = DEFAULT_MIN_DEPOSIT_MULTIPLIER,
        hold_seconds: float = 120.0,
        sign_refund: Callable[[bytes], str] | None = None,
    ) -> None:
        self.network = network
        self.asset = asset
        self.receiver_authorizer = receiver_authorizer
        self.channels = channels
        self.chain = chain
        self.clock = clock
        self.withdraw_delay = withdraw_delay
        self.min_deposit_multiplier = min_deposit_multiplier
        self.hold_seconds = hold_seconds
        self.sign_refund = sign_refund

    @property
    def caip2(self) -> str:
        return self.network.caip2

    def __repr__(self) -> str:
        return f"BatchSettlement(network={self.caip2!r}, asset={self.asset.address!r})"

    # -- pure ------------------------------------------------------------------------------------

    def parse(self, raw: Mapping[str, Any]) -> BatchPaymentPayload | Refusal:
        try:
            return parse_batch_payment(dict(raw))
        except PaymentError as error:
            return Refusal.of(error)

    async def accepts(self, quote: Quote) -> Sequence[PaymentRequirements]:
        extra: dict[str, Any] = {
            "name": self.asset.name,
            "version": self.asset.version,
            "receiverAuthorizer": self.receiver_authorizer,
            "withdrawDelay": self.withdraw_delay,
            "minDeposit": str(quote.price * self.min_deposit_multiplier),
            REQUEST_ID: quote.id,
        }
        return [
            PaymentRequirements(
                scheme=SCHEME,
                network=quote.network,
                amount=str(quote.price),
                asset=quote.asset,
                pay_to=quote.pay_to,
                max_timeout_seconds=quote.max_timeout_seconds,
                extra=extra,
            )
        ]

    def match(
        self, payload: BatchPaymentPayload | WireModel, offered: Sequence[PaymentRequirements], *, now: float
    ) -> Matched[BatchPaymentPayload] | Refusal:
        if not isinstance(payload, BatchPaymentPayload):  # as the gate received it: read it as ours
            parsed = self.parse(payload.dump())
            if isinstance(parsed, Refusal):
                return parsed
            payload = parsed
        requirements = next((r for r in offered if r.scheme == SCHEME and r.network == self.caip2), None)
        if requirements is None:
            return Refusal(
                reasons.NETWORK_MISMATCH, f"No {SCHEME} payment on {shown(self.caip2)} is offered."
            )
        accepted = payload.accepted
        if accepted.scheme != SCHEME or accepted.network != self.caip2:
            return Refusal(reasons.NETWORK_MISMATCH, f"This server takes {SCHEME} payments on {self.caip2}.")
        inner = payload.payload
        config, voucher = inner.channel_config, inner.voucher
        chain_id = self.network.chain_id
        if channel_id(config, chain_id) != voucher.channel_id.lower():
            return Refusal(
                reasons.CHANNEL_ID_MISMATCH, "The voucher's channelId is not its channelConfig's hash."
            )
        problem = rules.config_problem(config, requirements, parse_batch_extra(requirements.extra))
        signature = problem or rules.voucher_signature(config, voucher, chain_id)
        if isinstance(signature, rules.NeedsChain):
            signature = rules.Refuse(
                reasons.INVALID_VOUCHER_SIGNATURE,
                "Vouchers must be signed by the channel's payerAuthorizer or an EOA payer here.",
            )
        if signature is not None:
            return Refusal(signature.reason, signature.message)
        # One payment request is paid by one payload; the channel's own accounting (not this
        # key) is what keeps a voucher from being charged twice.
        key = (self.caip2, voucher.channel_id.lower(), f"{inner.type}:{_request_id(requirements)}")
        return Matched(payload, requirements, config.payer, int(requirements.amount), key)

    def receipt(self, settled: Settled) -> SettleResponse:
        # A deposit's or refund's transaction is shown; a voucher's charge sent none.
        on_chain = settled.transaction.startswith("0x")
        return SettleResponse(
            success=True,
            transaction=settled.transaction if on_chain else "",
            network=settled.network,
            payer=settled.payer,
            amount=str(settled.extra.get(_RECEIPT_AMOUNT, "")) or None,
            extra={k: v for k, v in settled.extra.items() if k != _RECEIPT_AMOUNT},
        )

    # -- with the ledger and the chain -----------------------------------------------------------

    async def verify(self, matched: Matched[BatchPaymentPayload]) -> Verdict:
        """Decide the payment over our channel record (and the chain's, when we hold none or
        it deposits); a deposit is relayed here; the channel is held for this call.

        Raises:
            SettlementError: the chain could not be read, or the deposit's fate is unknown.
            LedgerError: the ledger failed.
        """
        payment, requirements, now = matched.payload, matched.requirements, self.clock()
        inner = payment.payload
        cid = inner.voucher.channel_id.lower()
        record = await self.channels.channel(cid)
        snapshot: ChainSnapshot | None = None
        if record is None or isinstance(inner, DepositPayload):
            with backend_failures("read the channel"):
                snapshot = await self.chain.snapshot(cid)
        decision = rules.decide(payment, requirements, record=record, snapshot=snapshot, now=now)
        if isinstance(decision, rules.Corrective):
            return _correction(requirements, decision)
        if isinstance(decision, rules.Refuse):
            return Refusal(decision.reason, decision.message)
        if isinstance(decision, rules.NeedsChain):
            return Refusal(reasons.INVALID_VOUCHER_SIGNATURE, "Contract-wallet vouchers are not taken here.")
        if isinstance(decision, rules.AcceptRefund):
            return await self._hold_for_refund(matched, decision, now)
        transaction, deposited = "", 0
        if record is None and decision.deposit is None and snapshot is not None:
            # A funded channel we hold no record of (our state was lost): the chain's is the base.
            known = ChannelRecord(cid, self.caip2, decision.config, snapshot, synced_at=now)
            await self.channels.open_channel(known, now=now)
        if decision.deposit is not None:
            landed = await self._deposit(decision, record, now)
            if isinstance(landed, Refusal):
                return landed
            transaction, deposited = landed, int(decision.deposit.amount)
        try:
            held = await self.channels.reserve_channel(
                cid,
                base=decision.base,
                reservation=_request_id(requirements),
                until=now + self.hold_seconds,
                now=now,
            )
        except ChannelConflict as conflict:
            return await self._conflict(requirements, cid, conflict)
        state: dict[str, Any] = {"base": decision.base, "channelState": held.channel_state().dump()}
        if deposited:
            state["deposited"] = deposited
        return Escrowed(matched.payer, int(requirements.amount), transaction, state)

    async def _hold_for_refund(
        self, matched: Matched[BatchPaymentPayload], decision: rules.AcceptRefund, now: float
    ) -> Verdict:
        """Hold the channel so no voucher is charged while its unspent balance goes back."""
        if self.sign_refund is None:
            return Refusal(
                reasons.REFUND_PAYLOAD,
                "This server cannot sign cooperative refunds; withdraw on chain "
                "(initiateWithdraw, then finalizeWithdraw after the channel's withdrawDelay).",
            )
        base = int(decision.voucher.max_claimable_amount)
        try:
            await self.channels.reserve_channel(
                decision.channel_id,
                base=base,
                reservation=_request_id(matched.requirements),
                until=now + self.hold_seconds,
                now=now,
            )
        except ChannelConflict as conflict:
            return await self._conflict(matched.requirements, decision.channel_id, conflict)
        return RefundRequested(matched.payer, decision.amount)

    async def _refund(self, matched: Matched[BatchPaymentPayload], asked: int | None) -> Settled | Refusal:
        """Return the unspent balance (at most `asked`) by the receiver authorizer's signed
        `refundWithSignature`, then mirror the channel; the tool did not run."""
        assert self.sign_refund is not None
        inner, requirements = matched.payload.payload, matched.requirements
        cid = inner.voucher.channel_id.lower()
        try:
            record = await self.channels.channel(cid)
            with backend_failures("read the channel"):
                chain = await self.chain.snapshot(cid)
            spent = max(record.charged if record is not None else 0, chain.total_claimed)
            amount = chain.balance - spent if asked is None else min(asked, chain.balance - spent)
            if amount <= 0:
                return Refusal(reasons.REFUND_NO_BALANCE, "The channel holds nothing unspent to refund.")
            digest = refund_digest(cid, chain.refund_nonce, amount, self.network.chain_id)
            with backend_failures("send the refund"):
                tx_hash, revert = await self.chain.refund(
                    inner.channel_config, amount, chain.refund_nonce, self.sign_refund(digest)
                )
            if revert is not None:
                return Refusal(
                    reasons.REFUND_PAYLOAD, f"The refund was refused on chain: {shown(revert, 200)}."
                )
            with backend_failures("read the channel"):
                after = await self.chain.snapshot(cid)
            synced = await self.channels.sync_channel(cid, after, now=self.clock())
        finally:
            await self.channels.release_channel(cid, _request_id(requirements))
        logger.info("refunded %s from channel %s in %s", amount, cid, tx_hash)
        state = synced.channel_state().dump() if synced is not None else {}
        extra = {"channelState": state, _RECEIPT_AMOUNT: amount}
        return Settled(tx_hash, requirements.network, matched.payer, 0, extra)

    async def _deposit(
        self, decision: rules.Accept, record: ChannelRecord | None, now: float
    ) -> str | Refusal:
        """Relay the deposit and mirror the channel it opened or topped up; its transaction."""
        assert decision.deposit is not None
        with backend_failures("relay the deposit"):
            tx_hash, revert = await self.chain.deposit(decision.config, decision.deposit)
        if revert is not None:
            where = f" (transaction {tx_hash})" if tx_hash else ""
            logger.info("a channel deposit was refused%s: %s", where, revert or "no reason given")
            return Refusal(
                reasons.DEPOSIT_PAYLOAD,
                f"The deposit was refused on chain{where}: {shown(revert or 'no reason given', 200)}.",
            )
        with backend_failures("read the channel"):
            chain = await self.chain.snapshot(decision.channel_id)
        if record is None:
            opened = ChannelRecord(decision.channel_id, self.caip2, decision.config, chain, synced_at=now)
            await self.channels.open_channel(opened, now=now)
        else:
            await self.channels.sync_channel(decision.channel_id, chain, now=now)
        logger.info(
            "deposit of %s into channel %s landed in %s",
            decision.deposit.amount,
            decision.channel_id,
            tx_hash,
        )
        return tx_hash

    async def _conflict(
        self, requirements: PaymentRequirements, cid: str, conflict: ChannelConflict
    ) -> Refusal | Correction:
        """A channel charged since its voucher was checked gets the corrective answer; a busy
        or missing one a refusal."""
        if conflict.reason == reasons.CUMULATIVE_AMOUNT_MISMATCH:
            record = await self.channels.channel(cid)
            if record is not None:
                return _correction(
                    requirements, rules.Corrective(record.channel_state(), record.voucher_state())
                )
        return Refusal(conflict.reason, str(conflict))

    async def settle(
        self, matched: Matched[BatchPaymentPayload], verdict: Settleable, *, charge: int
    ) -> Settled | Refusal:
        """Commit the call's charge on its channel: the voucher and the charge in one ledger
        transaction (no chain call: claims collect vouchers later).

        Raises:
            LedgerError: the ledger failed (nothing was charged, or all of it).
        """
        if isinstance(verdict, RefundRequested):
            return await self._refund(matched, verdict.amount)
        if not isinstance(verdict, Escrowed):
            return Refusal(
                reasons.INVALID_PAYLOAD_TYPE, "A batch-settlement payment is settled only once held."
            )
        inner, requirements = matched.payload.payload, matched.requirements
        request_id = _request_id(requirements)
        try:
            record, _ = await self.channels.record_charge(
                inner.voucher.channel_id,
                inner.voucher,
                base=int(verdict.state["base"]),
                amount=charge,
                tool="",
                now=self.clock(),
                reservation=request_id,
                request_id=request_id,
            )
        except ChannelConflict as conflict:
            return Refusal(conflict.reason, str(conflict))
        extra = receipt_extra(record, charged_amount=charge)
        if "deposited" in verdict.state:
            extra[_RECEIPT_AMOUNT] = verdict.state["deposited"]
        return Settled(verdict.transaction, requirements.network, matched.payer, charge, extra)

    async def release(self, matched: Matched[BatchPaymentPayload], verdict: Settleable) -> None:
        if isinstance(verdict, Escrowed | RefundRequested):
            cid = matched.payload.payload.voucher.channel_id
            await self.channels.release_channel(cid, _request_id(matched.requirements))

    async def reconcile(self, payload: BatchPaymentPayload, requirements: PaymentRequirements) -> OnChain:
        # A voucher moves nothing on chain; a deposit is escrow that stays the payer's until charged.
        return OnChain("unused")


def _request_id(requirements: PaymentRequirements) -> str:
    return str(requirements.extra.get(REQUEST_ID, ""))


def _correction(requirements: PaymentRequirements, corrective: rules.Corrective) -> Correction:
    return Correction(
        Refusal(corrective.reason, corrective.message), (corrected_requirements(requirements, corrective),)
    )

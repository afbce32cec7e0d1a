"""What a server keeps of its batch-settlement channels: the records the ledger stores and the
rules decide over. Amounts are int atomic units of the channel's token; times are seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .wire import ChannelConfig, ChannelState, VoucherState


@dataclass(frozen=True, slots=True)
class ChainSnapshot:
    """A channel as the settlement contract holds it (`channels`, `pendingWithdrawals`,
    `refundNonce`): what was deposited and is still in escrow, and what was claimed of it."""

    balance: int
    total_claimed: int
    withdraw_requested_at: int = 0
    refund_nonce: int = 0

    @property
    def exists(self) -> bool:
        return self.balance > 0


@dataclass(frozen=True, slots=True)
class ChannelRecord:
    """One channel as this server knows it.

    `charged` is the spec's `chargedCumulativeAmount`: what successful calls have cost so
    far. `signed_max_claimable` and `signature` are the latest voucher, the one a claim
    presents (its ceiling covers `charged`). `chain` mirrors the contract, as read at
    `synced_at`; `settled` is how much of `chain.total_claimed` has been swept to the
    receiver. A reservation (`reservation`, until `reserved_until`) holds the channel for
    one call between its voucher's check and its charge.

    The owner of a channel is the server that quoted it: `receiver`, `network`, `token`
    (the `pay_to`, `network` and `asset` of its requirements).
    """

    channel_id: str
    network: str
    config: ChannelConfig
    chain: ChainSnapshot
    charged: int = 0
    signed_max_claimable: int = 0
    signature: str | None = None
    settled: int = 0
    synced_at: float | None = None
    updated_at: float = 0.0
    reservation: str | None = None
    reserved_until: float | None = None

    @property
    def payer(self) -> str:
        return self.config.payer

    @property
    def payer_authorizer(self) -> str:
        return self.config.payer_authorizer

    @property
    def receiver(self) -> str:
        return self.config.receiver

    @property
    def token(self) -> str:
        return self.config.token

    @property
    def unclaimed(self) -> int:
        """Charged but not yet claimed on chain: what a claim would collect."""
        return max(self.charged - self.chain.total_claimed, 0)

    @property
    def unsettled(self) -> int:
        """Claimed on chain but not yet swept to the receiver."""
        return max(self.chain.total_claimed - self.settled, 0)

    @property
    def refundable(self) -> int:
        """What a refund could return: the escrow that no charge has spent."""
        return max(self.chain.balance - self.charged, 0)

    def busy(self, now: float) -> bool:
        """Whether another call holds the channel at `now`."""
        return self.reservation is not None and (self.reserved_until or 0.0) > now

    def with_chain(self, chain: ChainSnapshot, *, now: float) -> ChannelRecord:
        """This record with the contract's state as read at `now`."""
        return replace(self, chain=chain, synced_at=now, updated_at=now)

    def channel_state(self) -> ChannelState:
        """The snapshot receipts and corrective challenges carry (`extra.channelState`)."""
        return ChannelState(
            channel_id=self.channel_id,
            balance=str(self.chain.balance),
            total_claimed=str(self.chain.total_claimed),
            withdraw_requested_at=self.chain.withdraw_requested_at,
            refund_nonce=self.chain.refund_nonce,
            charged_cumulative_amount=str(self.charged),
        )

    def voucher_state(self) -> VoucherState | None:
        """The latest voucher, for a client to check before it adopts `charged` (None: none yet)."""
        if self.signature is None:
            return None
        return VoucherState(signed_max_claimable=str(self.signed_max_claimable), signature=self.signature)


@dataclass(frozen=True, slots=True)
class Charge:
    """One successful paid call on a channel: `amount` charged, bringing the channel to
    `cumulative`, under the voucher whose ceiling is `max_claimable_amount`."""

    channel_id: str
    tool: str
    amount: int
    cumulative: int
    max_claimable_amount: int
    signature: str
    at: float
    request_id: str | None = None

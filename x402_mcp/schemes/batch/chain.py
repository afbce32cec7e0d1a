"""What the batch-settlement scheme needs of the chain, and of the ledger's channels.

Declared here, implemented above (the settlement layer drives a node; the ledger stores
channels), so the scheme imports neither.
"""

from __future__ import annotations

from typing import Protocol, Unpack

from . import rules
from .records import ChainSnapshot, ChannelRecord, Charge
from .wire import ChannelConfig, Deposit, Voucher


class ChannelChain(Protocol):
    """Reads channels from the settlement contract and relays deposits to it."""

    async def snapshot(self, channel_id: str) -> ChainSnapshot:
        """The contract's state of one channel (all zero when it holds none).

        Raises:
            SettlementError: the chain could not be read.
        """
        ...

    async def deposit(self, config: ChannelConfig, deposit: Deposit) -> tuple[str, str | None]:
        """Relay a payer's deposit and wait until mined: its hash, and the revert message when it
        failed (None: it landed).

        Raises:
            SettlementError: the node failed, or the deposit was not mined in time.
        """
        ...

    async def refund(
        self, config: ChannelConfig, amount: int, nonce: int, signature: str
    ) -> tuple[str, str | None]:
        """Send the receiver authorizer's `refundWithSignature` and wait until mined: as `deposit`.

        Raises:
            SettlementError: the node failed, or the refund was not mined in time.
        """
        ...


class ChannelStore(Protocol):
    """The ledger's channel statements the scheme uses (`x402_mcp.ledger.channels`)."""

    async def channel(self, channel_id: str) -> ChannelRecord | None: ...

    async def open_channel(self, record: ChannelRecord, *, now: float) -> ChannelRecord: ...

    async def sync_channel(
        self, channel_id: str, chain: ChainSnapshot, *, now: float
    ) -> ChannelRecord | None: ...

    async def reserve_channel(
        self, channel_id: str, *, base: int, reservation: str, until: float, now: float
    ) -> ChannelRecord: ...

    async def release_channel(self, channel_id: str, reservation: str) -> bool: ...

    async def record_charge(
        self, channel_id: str, voucher: Voucher, **terms: Unpack[rules.ChargeTerms]
    ) -> tuple[ChannelRecord, Charge]: ...

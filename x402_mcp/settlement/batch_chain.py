"""The batch-settlement contract on the chain a `LocalSettlement` drives: channel reads and
relayed deposits, sent from its gas account through its chain worker."""

from __future__ import annotations

from ..schemes.batch.calls import (
    DEPOSIT_GAS,
    REFUND_GAS,
    channel_reads,
    deposit_calldata,
    refund_calldata,
    snapshot_from,
)
from ..schemes.batch.constants import BATCH_SETTLEMENT_ADDRESS
from ..schemes.batch.records import ChainSnapshot
from ..schemes.batch.wire import ChannelConfig, Deposit
from .local import LocalSettlement


class LocalChannelChain:
    """`ChannelChain` over `settlement`'s node and gas account."""

    def __init__(self, settlement: LocalSettlement) -> None:
        self.settlement = settlement

    async def snapshot(self, channel_id: str) -> ChainSnapshot:
        read = self.settlement.read_contract
        channels, pending, nonce = channel_reads(channel_id)
        return snapshot_from(
            await read(BATCH_SETTLEMENT_ADDRESS, channels),
            await read(BATCH_SETTLEMENT_ADDRESS, pending),
            await read(BATCH_SETTLEMENT_ADDRESS, nonce),
        )

    async def refund(
        self, config: ChannelConfig, amount: int, nonce: int, signature: str
    ) -> tuple[str, str | None]:
        calldata = refund_calldata(config, amount, nonce, signature)
        return await self.settlement.transact(
            BATCH_SETTLEMENT_ADDRESS, calldata, gas=REFUND_GAS, what="the channel refund"
        )

    async def deposit(self, config: ChannelConfig, deposit: Deposit) -> tuple[str, str | None]:
        calldata = deposit_calldata(config, deposit)
        return await self.settlement.transact(
            BATCH_SETTLEMENT_ADDRESS, calldata, gas=DEPOSIT_GAS, what="the channel deposit"
        )

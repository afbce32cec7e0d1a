"""Sending a settlement transaction and waiting until it is mined, polling for its receipt."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import anyio
from hexbytes import HexBytes
from web3.types import TxReceipt

from ..errors import SettlementError
from .relayer import Relayer, Sent
from .worker import ChainWorker

__all__ = ["LONGEST_RECEIPT_POLL", "RECEIPT_POLL_SECONDS", "MinedSender", "receipt_poll_delays"]

# The first receipt poll over JSON-RPC comes soon (a dev chain mines within milliseconds of
# the send); later waits double up to `LONGEST_RECEIPT_POLL`, so a 2 s block (Base) costs
# about seven polls and a slow one about one a second.
RECEIPT_POLL_SECONDS = 0.02
LONGEST_RECEIPT_POLL = 1.0


def receipt_poll_delays(first: float, longest: float = LONGEST_RECEIPT_POLL) -> Iterator[float]:
    """The waits before each receipt poll: `first`, doubling, capped at `longest` (or `first` if longer)."""
    cap = max(first, longest)
    delay = first
    while True:
        yield delay
        delay = min(2 * delay, cap)


class MinedSender:
    """Sends through `relayer` (in `worker`'s threads) and waits for the receipt.

    `receipt_timeout`: seconds from the send to give up waiting; `poll_latency`: the
    first wait before a receipt poll (see `receipt_poll_delays`).
    """

    def __init__(
        self, relayer: Relayer, worker: ChainWorker, *, receipt_timeout: float, poll_latency: float
    ) -> None:
        self._relayer = relayer
        self._worker = worker
        self._receipt_timeout = receipt_timeout
        self._poll_latency = poll_latency

    async def send_mined(self, to: str, data: bytes, *, gas: int, before_retrying: str) -> Sent:
        """Send a transaction and wait (at most `receipt_timeout` from the send) until it is
        mined: `Sent` with its receipt, or the send's refusal (no hash, no receipt).

        Raises:
            SettlementError: not mined in time (the message says to `before_retrying`).
        """
        deadline = anyio.current_time() + self._receipt_timeout
        send = functools.partial(self._relayer.send, to, data, gas=gas, wait=self._receipt_timeout)
        sent = await self._worker.call(send)
        if sent.tx_hash is None:
            return sent
        receipt = await self._mined(sent.tx_hash, sent.receipt, before_retrying, deadline)
        return Sent(sent.tx_hash, receipt, None)

    async def _mined(
        self, tx_hash: HexBytes, receipt: TxReceipt | None, before_retrying: str, deadline: float
    ) -> TxReceipt:
        """`receipt`, or the transaction's receipt once it is mined (polled until `deadline`)."""
        delays = receipt_poll_delays(self._poll_latency)
        while receipt is None:
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                # If the nonce was wrong the transaction waits forever: read it afresh next time.
                self._relayer.resync()
                raise SettlementError(
                    f"transaction {tx_hash.to_0x_hex()} was sent but not mined within "
                    f"{self._receipt_timeout:g} s; it may still be mined, so {before_retrying} "
                    "before retrying"
                )
            await anyio.sleep(min(next(delays), remaining))
            receipt = await self._worker.call(self._relayer.receipt, tx_hash)
        return receipt

"""The node, read and written: a `ChainReader` reads it, a `Relayer` also sends from our gas account.

The reader needs no account: it checks the chain id (once) and reads code, calls,
logs and receipts, which is all a lookup of an authorization needs (see `lookup`).
The relayer adds what a sender must track between transactions: the gas account's
next nonce and the current fees, re-reading them from the node when a send says
they are stale. Every method blocks and none is thread-safe: the caller runs them
one at a time in a worker thread (see `LocalSettlement`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.types import BlockIdentifier, LogReceipt, Nonce, TxParams, TxReceipt, Wei

from ..errors import SettlementError
from ..networks import Network
from .reverts import revert_message

__all__ = ["ChainReader", "Relayer", "Sent"]

# Base fees move at most 12.5% a block, so twice the base fee survives several full blocks;
# re-reading the fee every few seconds keeps a long-lived server current.
_FEE_TTL_SECONDS = 10.0
_NONCE_ERRORS = ("nonce", "already known", "replacement transaction underpriced")
_FEE_ERRORS = ("fee cap", "base fee", "underpriced", "max fee per gas")


@dataclass(frozen=True, slots=True)
class Sent:
    """What sending gave: a hash (and the receipt if already mined), or a revert at send time."""

    tx_hash: HexBytes | None
    receipt: TxReceipt | None
    revert: str | None


class ChainReader:
    """Reads from `network`'s node through `w3`: no account, nothing sent."""

    def __init__(self, w3: Web3, network: Network) -> None:
        self._w3 = w3
        self._network = network
        self._chain_checked = False
        # `eth_call`s name no sender unless a subclass has one (the relayer's gas account).
        self._call_from: str | None = None

    @property
    def network(self) -> Network:
        return self._network

    def ensure_chain(self) -> None:
        """Check once that the node is on the configured chain.

        Raises:
            SettlementError: naming both chain ids.
        """
        if self._chain_checked:
            return
        actual = self._w3.eth.chain_id
        if actual != self._network.chain_id:
            raise SettlementError(
                f"the RPC node is on chain {actual}, but this settlement backend is configured for "
                f"{self._network.caip2}"
            )
        self._chain_checked = True

    def has_code(self, address: str) -> bool:
        return bool(self._w3.eth.get_code(Web3.to_checksum_address(address)))

    def call(
        self, to: str | None, data: bytes, *, gas: int | None = None, block: BlockIdentifier = "latest"
    ) -> bytes:
        """`eth_call` (from the gas account, for a relayer); a revert raises whatever the node raises.

        With `to=None`, `data` is initcode run as a contract creation that is never kept
        (a "deployless" call): its constructor's return or revert data is the answer.
        """
        params: TxParams = {"data": data}
        if to is not None:
            params["to"] = Web3.to_checksum_address(to)
        if self._call_from is not None:
            params["from"] = self._call_from
        if gas is not None:
            params["gas"] = gas
        return bytes(self._w3.eth.call(params, block))

    def logs(self, address: str, topics: list[str], *, lookback_blocks: int) -> list[LogReceipt]:
        """Logs of contract `address` matching `topics` in the last `lookback_blocks` blocks."""
        latest = self._w3.eth.block_number
        return list(
            self._w3.eth.get_logs(
                {
                    "address": Web3.to_checksum_address(address),
                    "topics": topics,
                    "fromBlock": max(0, latest - lookback_blocks),
                    "toBlock": latest,
                }
            )
        )

    def receipt(self, tx_hash: HexBytes) -> TxReceipt | None:
        """The receipt, or None while the transaction is not mined."""
        try:
            return self._w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            return None


class Relayer(ChainReader):
    """Sends EIP-1559 transactions from `account` to `network`'s node and reads from it."""

    def __init__(self, w3: Web3, account: LocalAccount, network: Network) -> None:
        super().__init__(w3, network)
        self._account = account
        self._call_from = str(account.address)
        self._stale = False
        self._nonce: int | None = None
        self._fees: tuple[int, int] | None = None
        self._fees_read_at = 0.0

    @property
    def address(self) -> str:
        return str(self._account.address)

    def resync(self) -> None:
        """Have the next send read the nonce and fees from the node again.

        Safe to call from any thread: it only raises a flag, because the worker may
        be signing with the cached nonce at this very moment.
        """
        self._stale = True

    def simulate(self, to: str | None, data: bytes, *, gas: int, block: BlockIdentifier) -> str | None:
        """None if the call would succeed, else its revert message ("" when it gave none).

        `to=None` simulates initcode (see `call`)."""
        try:
            self.call(to, data, gas=gas, block=block)
        except Exception as exc:
            message = revert_message(exc)
            if message is None:
                raise
            return message
        return None

    def send(self, to: str, data: bytes, *, gas: int) -> Sent:
        """Sign and broadcast a transaction; retried once after a stale nonce or fee.

        Raises:
            SettlementError: when the gas account cannot pay for gas.
        """
        self.ensure_chain()
        if self._stale:
            self._stale = False
            self._nonce = None
            self._fees = None
        for attempt in (1, 2):
            nonce = self._nonce
            if nonce is None:
                nonce = self._w3.eth.get_transaction_count(self._account.address, "pending")
            signed = self._account.sign_transaction(self._transaction(to, data, gas, nonce))  # type: ignore[arg-type]
            try:
                self._w3.eth.send_raw_transaction(signed.raw_transaction)
            except Exception as exc:
                text = str(exc).lower()
                message = revert_message(exc)
                self._nonce = None  # after any refusal the node's count is the truth
                if message is not None:
                    return Sent(None, None, message)
                if "insufficient funds" in text:
                    raise SettlementError(
                        f"the gas account {self.address} cannot pay for gas on {self._network.label}"
                    ) from exc
                if attempt == 1 and any(marker in text for marker in _NONCE_ERRORS):
                    continue
                if attempt == 1 and any(marker in text for marker in _FEE_ERRORS):
                    self._fees = None
                    continue
                raise
            self._nonce = nonce + 1
            return Sent(signed.hash, self.receipt(signed.hash), None)
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _transaction(self, to: str, data: bytes, gas: int, nonce: int) -> TxParams:
        max_fee, tip = self._current_fees()
        return {
            "type": 2,
            "chainId": self._network.chain_id,
            "nonce": Nonce(nonce),
            "from": self._account.address,
            "to": Web3.to_checksum_address(to),
            "value": Wei(0),
            "data": data,
            "gas": gas,
            "maxFeePerGas": Wei(max_fee),
            "maxPriorityFeePerGas": Wei(tip),
        }

    def _current_fees(self) -> tuple[int, int]:
        """(maxFeePerGas, maxPriorityFeePerGas), re-read from the node every few seconds."""
        now = time.monotonic()
        if self._fees is None or now - self._fees_read_at > _FEE_TTL_SECONDS:
            base_fee = int(self._w3.eth.get_block("latest").get("baseFeePerGas", 0))
            tip = int(self._w3.eth.max_priority_fee)
            self._fees = (2 * base_fee + tip, tip)
            self._fees_read_at = now
        return self._fees

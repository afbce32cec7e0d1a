"""Sending from our gas account: a `Relayer` is a `ChainReader` that also signs and broadcasts.

It tracks what a sender must between transactions: the gas account's next nonce
and the current fees, re-reading them from the node when a send says they are
stale. Every method blocks; see `reader` for how the node is read and `jsonrpc`
for the connections.

A send asks for the receipt in the same round trip (`eth_sendRawTransactionSync`,
EIP-7966) where the node offers it; a node that answers "method not found" is
remembered as lacking it, and gets `eth_sendRawTransaction` and receipt polls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from eth_keys.datatypes import PrivateKey
from hexbytes import HexBytes
from requests.exceptions import ReadTimeout
from web3 import Web3
from web3.exceptions import Web3RPCError
from web3.types import BlockIdentifier, TxReceipt

from ..core.networks import Network
from ..errors import SettlementError
from .bounded import AnswerTooLarge
from .eip1559 import SignedTransaction, sign_eip1559
from .reader import ChainReader, read_receipt
from .reverts import revert_message

__all__ = ["SEND_SYNC", "ChainReader", "Relayer", "Sent"]

logger = logging.getLogger(__name__)

SEND_SYNC = "eth_sendRawTransactionSync"
"""EIP-7966: broadcast and answer with the receipt once mined (anvil, geth, reth)."""

# Base fees move at most 12.5% a block, so twice the base fee survives several full blocks;
# re-reading the fee every few seconds keeps a long-lived server current.
_FEE_TTL_SECONDS = 10.0
_NONCE_ERRORS = ("nonce", "already known", "already imported", "replacement transaction underpriced")
# The node already holds this very transaction (same hash) in its pool.
_ALREADY_HELD = ("already known", "already imported")
_FEE_ERRORS = ("fee cap", "base fee", "underpriced", "max fee per gas")
_METHOD_NOT_FOUND = -32601
# How nodes word "no such method" when they do not use the standard code.
_MISSING_METHOD_WORDS = ("not found", "does not exist", "not supported", "unsupported", "not available")
# EIP-7966's code for "accepted, but not mined within the timeout".
_SYNC_TIMEOUT_CODE = 4


class _Unconfirmed(SettlementError):
    """The node took the transaction but gave no receipt in time: poll for it (caught by `send`)."""


@dataclass(frozen=True, slots=True)
class Sent:
    """What sending gave: a hash (and the receipt if already mined), or a revert at send time."""

    tx_hash: HexBytes | None
    receipt: TxReceipt | None
    revert: str | None


class Relayer(ChainReader):
    """Sends EIP-1559 transactions from `account` to `network`'s node and reads from it."""

    def __init__(self, w3: Web3, account: LocalAccount, network: Network) -> None:
        super().__init__(w3, network)
        self._account = account
        self._key = PrivateKey(bytes(account.key))
        self._call_from = str(account.address)
        self._stale = False
        self._nonce: int | None = None
        self._fees: tuple[int, int] | None = None
        self._fees_read_at = 0.0
        # Nonce and fees, for sends in several threads at once (see `send`).
        self._state = threading.Lock()
        # Whether the node offers `eth_sendRawTransactionSync`: unknown until the first send.
        # Tried only over our own connections: elsewhere the send holds the one worker
        # thread of `LocalSettlement`, and waiting there for a block would hold up every call.
        self.send_sync: bool | None = None if self._http is not None else False

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

    def send(self, to: str, data: bytes, *, gas: int, wait: float | None = None) -> Sent:
        """Sign and broadcast a transaction; retried once after a stale nonce or fee.

        `wait`: the longest time to wait for the receipt in the send's answer; past
        it the transaction counts as sent, without a receipt yet.

        With our own HTTP connections (`concurrent`), sends may run in several threads
        at once: each takes the next nonce under a lock and broadcasts outside it, so
        one waiting for its receipt (`eth_sendRawTransactionSync`) holds up no other.

        Raises:
            SettlementError: when the gas account cannot pay for gas.
        """
        self.ensure_chain()
        for attempt in (1, 2):
            signed = self._signed(to, data, gas)
            try:
                receipt = self._broadcast(signed.raw_transaction, signed.hash, wait)
            except _Unconfirmed:
                # The node holds the transaction under this nonce: the next one follows it.
                return Sent(signed.hash, None, None)
            except Exception as exc:
                text = str(exc).lower()
                message = revert_message(exc)
                with self._state:
                    self._nonce = None  # after any refusal the node's count is the truth
                if message is not None:
                    if self.holds(signed.hash):
                        # Refused in words, yet the node holds (or mined) it: only its receipt tells.
                        return Sent(signed.hash, None, None)
                    return Sent(None, None, message)
                if "insufficient funds" in text:
                    raise SettlementError(
                        f"the gas account {self.address} cannot pay for gas on {self._network.label}"
                    ) from exc
                if any(marker in text for marker in _NONCE_ERRORS):
                    # A request repeated after a dropped connection meets its own first copy:
                    # that transaction holds the nonce, so it is the one to wait for, and
                    # signing the authorization afresh would only send a duplicate to revert.
                    if any(marker in text for marker in _ALREADY_HELD):
                        return Sent(signed.hash, None, None)
                    mined = self.receipt(signed.hash)
                    if mined is not None:
                        return Sent(signed.hash, mined, None)
                    if attempt == 1:
                        continue
                if attempt == 1 and any(marker in text for marker in _FEE_ERRORS):
                    with self._state:
                        self._fees = None
                    continue
                raise
            return Sent(signed.hash, receipt, None)
        raise AssertionError("unreachable: the second attempt returns or raises")

    @property
    def concurrent(self) -> bool:
        """Whether sends and calls may run in several threads at once (our own HTTP connections)."""
        return self._http is not None

    def _signed(self, to: str, data: bytes, gas: int) -> SignedTransaction:
        """The transaction signed with the next nonce, which it takes (a refused send gives it back)."""
        with self._state:
            if self._stale:
                self._stale = False
                self._nonce = None
                self._fees = None
            nonce = self._nonce
            if nonce is None:
                nonce = self._w3.eth.get_transaction_count(self._account.address, "pending")
            self._nonce = nonce + 1
            max_fee, tip = self._current_fees()
        return sign_eip1559(
            self._key,
            chain_id=self._network.chain_id,
            nonce=nonce,
            max_priority_fee=tip,
            max_fee=max_fee,
            gas=gas,
            to=bytes.fromhex(Web3.to_checksum_address(to)[2:]),
            data=data,
        )

    def _broadcast(self, raw: bytes, tx_hash: HexBytes, wait: float | None) -> TxReceipt | None:
        """Send `raw`; its receipt if the node gave it (or the transaction was mined at once).

        Raises:
            _Unconfirmed: the node took it but answered before it was mined.
            Exception: whatever the node raised when it refused the transaction.
        """
        raw_hex = "0x" + raw.hex()
        if self.send_sync is not False:
            try:
                answer = self._request(SEND_SYNC, [raw_hex], timeout=wait)
            except Web3RPCError as exc:
                error = exc.rpc_response.get("error") if exc.rpc_response else None
                if not _method_missing(error):
                    if _sync_timed_out(error):
                        raise _Unconfirmed from exc
                    raise
                # Nothing was broadcast: a node refuses a method it lacks before reading its
                # parameters. From now on: send, then poll for the receipt.
                logger.info(
                    "the %s node lacks %s: sending, then polling for receipts", self._network.label, SEND_SYNC
                )
                self.send_sync = False
            except (ReadTimeout, AnswerTooLarge) as exc:
                # The request reached the node, which may hold the transaction: look for it.
                raise _Unconfirmed from exc
            else:
                self.send_sync = True
                return read_receipt(answer, tx_hash)
        if self._lean:
            self._request("eth_sendRawTransaction", [raw_hex])
        else:
            self._w3.eth.send_raw_transaction(raw)
        # A node that mines as it accepts (py-evm) has the receipt already.
        return self.receipt(tx_hash)

    def _current_fees(self) -> tuple[int, int]:
        """(maxFeePerGas, maxPriorityFeePerGas), re-read from the node every few seconds."""
        now = time.monotonic()
        if self._fees is None or now - self._fees_read_at > _FEE_TTL_SECONDS:
            base_fee = int(self._w3.eth.get_block("latest").get("baseFeePerGas", 0))
            tip = int(self._w3.eth.max_priority_fee)
            self._fees = (2 * base_fee + tip, tip)
            self._fees_read_at = now
        return self._fees


def _method_missing(error: object) -> bool:
    if not isinstance(error, Mapping):
        return False
    if error.get("code") == _METHOD_NOT_FOUND:
        return True
    message = str(error.get("message", "")).lower()
    return ("method" in message or "endpoint" in message) and any(
        words in message for words in _MISSING_METHOD_WORDS
    )


def _sync_timed_out(error: object) -> bool:
    if not isinstance(error, Mapping):
        return False
    message = str(error.get("message", "")).lower()
    return error.get("code") == _SYNC_TIMEOUT_CODE or "timeout" in message or "timed out" in message

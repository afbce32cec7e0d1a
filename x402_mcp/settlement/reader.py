"""Reading the node: `ChainReader` checks the chain id (once) and reads code, calls, logs and receipts.

That is all a lookup of an authorization needs (see `lookup`); `Relayer` adds sending.
Every method blocks and none is thread-safe unless the connection is our own
(`HttpJsonRpc`): the caller runs them in a worker thread (see `LocalSettlement`).

The calls of every settlement (`eth_call`, the receipt) go to a JSON-RPC provider
(HTTP, IPC) as plain requests rather than through web3's method layer: its
middleware asks `eth_chainId` before and after every `eth_call`, tripling the round
trips of a simulation. Answers are mapped to the exceptions web3 would raise
(`ContractLogicError` for a revert, `Web3RPCError` for other errors), so revert
reasons and error handling are the same either way. Other providers (the embedded
py-evm chain) keep web3's full path, whose formatters they need.

Every receipt must be the receipt of the transaction asked about (`own_receipt`):
a node answering with another one's is a `SettlementError`, never a mined transfer.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from typing import Any, cast

from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from requests.exceptions import ConnectionError as RequestsConnectionError
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError
from web3.providers import JSONBaseProvider
from web3.types import BlockIdentifier, LogReceipt, RPCEndpoint, TxParams, TxReceipt

from ..core.networks import Network
from ..errors import SettlementError
from .bounded import bound_http_provider
from .jsonrpc import HttpJsonRpc

__all__ = ["ChainReader", "own_receipt", "read_receipt"]

_RETRIED_READS = frozenset({"eth_call", "eth_getTransactionReceipt"})
_READ_RETRIES = 4
_READ_BACKOFF_SECONDS = 0.125


class ChainReader:
    """Reads from `network`'s node through `w3`: no account, nothing sent."""

    def __init__(self, w3: Web3, network: Network) -> None:
        self._w3 = w3
        self._network = network
        self._chain_checked = False
        # `eth_call`s name no sender unless a subclass has one (the relayer's gas account).
        self._call_from: str | None = None
        # Plain JSON-RPC for the per-settlement calls (see the module docstring).
        self._lean = isinstance(w3.provider, JSONBaseProvider)
        # Every answer read over HTTP has a deadline and a size cap, on our own connections
        # and on web3's requests session alike (which serves what ours does not).
        bound_http_provider(w3.provider)
        self._http = HttpJsonRpc.for_provider(w3.provider)

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
        if self._lean:
            request: dict[str, str] = {"data": "0x" + data.hex()}
            if to is not None:
                request["to"] = Web3.to_checksum_address(to)  # refuses a malformed address, as web3 does
            if self._call_from is not None:
                request["from"] = self._call_from
            if gas is not None:
                request["gas"] = hex(gas)
            answer = self._request("eth_call", [request, _block_param(block)], reverts=True)
            return bytes(HexBytes(answer))
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
        if self._lean:
            answer = self._request("eth_getTransactionReceipt", [tx_hash.to_0x_hex()])
            return None if answer is None else read_receipt(answer, tx_hash)
        try:
            found = self._w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            return None
        return own_receipt(found, tx_hash)

    def holds(self, tx_hash: HexBytes) -> bool:
        """Whether the node knows the transaction `tx_hash` (pending or mined)."""
        if self._lean:
            return self._request("eth_getTransactionByHash", [tx_hash.to_0x_hex()]) is not None
        try:
            self._w3.eth.get_transaction(tx_hash)
        except TransactionNotFound:
            return False
        return True

    def _request(
        self, method: str, params: list[Any], *, reverts: bool = False, timeout: float | None = None
    ) -> Any:
        """One JSON-RPC call straight to the provider; an error answer raises as web3 would.

        `reverts`: the method executes code (`eth_call`), so an error that says it
        reverted is a `ContractLogicError` carrying the revert data. `timeout`: the
        longest wait for the answer, if shorter than the connection's (own HTTP only).
        """
        if self._http is not None:
            response = self._with_retries(method, params, timeout)
        else:
            response = cast(dict[str, Any], self._w3.provider.make_request(RPCEndpoint(method), params))
        error = response.get("error")
        if error is None:
            return response.get("result")
        if reverts and isinstance(error, Mapping):
            message = error.get("message")
            data = error.get("data")
            if error.get("code") == 3 or (isinstance(message, str) and "revert" in message.lower()):
                raise ContractLogicError(
                    message if isinstance(message, str) and message else "execution reverted",
                    data=data if isinstance(data, str) else None,
                )
        raise Web3RPCError(str(error), rpc_response=cast(Any, response))

    def _with_retries(self, method: str, params: list[Any], timeout: float | None) -> dict[str, Any]:
        # As web3's provider does by default for reads: a node restarting, or a connection
        # refused for a moment, is not yet a failed settlement. Sends are not repeated here.
        http = self._http
        assert http is not None
        for attempt in itertools.count():
            try:
                return http.request(method, params, timeout=timeout)
            except RequestsConnectionError:
                if method not in _RETRIED_READS or attempt >= _READ_RETRIES:
                    raise
                time.sleep(_READ_BACKOFF_SECONDS * 2**attempt)
        raise AssertionError("unreachable")


def _block_param(block: BlockIdentifier) -> str:
    if isinstance(block, int):
        return hex(block)
    if isinstance(block, bytes):
        return "0x" + block.hex()
    return str(block)


def own_receipt(receipt: TxReceipt, tx_hash: HexBytes) -> TxReceipt:
    """`receipt`, once it is known to be the receipt of `tx_hash`.

    A node that answers with another transaction's receipt (a mined transfer of
    someone else's, say) must never make ours look mined.

    Raises:
        SettlementError: it is another transaction's receipt.
    """
    answered = receipt.get("transactionHash")
    if answered is None or HexBytes(answered) != HexBytes(tx_hash):
        shown_hash = HexBytes(answered).to_0x_hex() if isinstance(answered, (bytes, str)) else "none"
        raise SettlementError(
            f"the RPC node answered with the receipt of transaction {shown_hash[:66]} when asked for "
            f"{HexBytes(tx_hash).to_0x_hex()}; its answers cannot be trusted"
        )
    return receipt


def read_receipt(answer: Mapping[str, Any], tx_hash: HexBytes) -> TxReceipt:
    """The fields of the JSON-RPC receipt of `tx_hash` that settlement and lookups read, typed
    as web3 types them.

    Raises:
        SettlementError: it is another transaction's receipt (see `own_receipt`).
    """
    logs = [
        {
            "address": to_checksum_address(log["address"]),
            "topics": [HexBytes(topic) for topic in log["topics"]],
            "data": HexBytes(log["data"]),
            "transactionHash": HexBytes(log["transactionHash"]),
            "logIndex": int(log["logIndex"], 16),
        }
        for log in answer["logs"]
    ]
    contract = answer.get("contractAddress")
    receipt = {
        "transactionHash": HexBytes(answer["transactionHash"]),
        "blockNumber": int(answer["blockNumber"], 16),
        "blockHash": HexBytes(answer["blockHash"]),
        "status": int(answer["status"], 16),
        "gasUsed": int(answer["gasUsed"], 16),
        "contractAddress": to_checksum_address(contract) if contract else None,
        "logs": logs,
    }
    return own_receipt(cast(TxReceipt, receipt), tx_hash)

"""The node, read and written: a `ChainReader` reads it, a `Relayer` also sends from our gas account.

The reader needs no account: it checks the chain id (once) and reads code, calls,
logs and receipts, which is all a lookup of an authorization needs (see `lookup`).
The relayer adds what a sender must track between transactions: the gas account's
next nonce and the current fees, re-reading them from the node when a send says
they are stale. Every method blocks and none is thread-safe: the caller runs them
one at a time in a worker thread (see `LocalSettlement`).

The calls of every settlement (`eth_call`, the send, the receipt) go to a JSON-RPC
provider (HTTP, IPC) as plain requests rather than through web3's method layer:
its middleware asks `eth_chainId` before and after every `eth_call`, tripling the
round trips of a simulation. Over plain HTTP they use one keep-alive connection
of our own (`_HttpJsonRpc`): the requests session under web3's provider costs a
few times a loopback node's answer (it re-reads the proxy environment on every
request). Answers are mapped to the exceptions web3 and requests would raise
(`ContractLogicError` for a revert, `Web3RPCError` for other errors, requests'
`ConnectionError`, `ReadTimeout` and `HTTPError`), so revert reasons and error
handling are the same either way. Other providers (the embedded py-evm chain)
keep web3's full path, whose formatters they need.

Every answer over HTTP, on our connections or web3's, has a deadline for the whole
answer and a size cap (see `bounded`), and every receipt must be the receipt of the
transaction asked about (`_receipt_of`): a node answering with another one's is a
`SettlementError`, never a mined transfer.

A send asks for the receipt in the same round trip (`eth_sendRawTransactionSync`,
EIP-7966) where the node offers it; a node that answers "method not found" is
remembered as lacking it, and gets `eth_sendRawTransaction` and receipt polls.
"""

from __future__ import annotations

import functools
import http.client
import itertools
import json
import logging
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from eth_account.signers.local import LocalAccount
from eth_keys.datatypes import PrivateKey
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ConnectTimeout, HTTPError, ReadTimeout
from web3 import HTTPProvider, Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError
from web3.providers import JSONBaseProvider
from web3.types import BlockIdentifier, LogReceipt, RPCEndpoint, TxParams, TxReceipt

from ..core.networks import Network
from ..errors import SettlementError
from .bounded import (
    DEFAULT_ANSWER_SECONDS,
    MAX_ANSWER_BYTES,
    AnswerTooLarge,
    DeadlineResponse,
    bound_http_provider,
    read_capped,
)
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
_RETRIED_READS = frozenset({"eth_call", "eth_getTransactionReceipt"})
_READ_RETRIES = 4
_READ_BACKOFF_SECONDS = 0.125
# EIP-7966's code for "accepted, but not mined within the timeout".
_SYNC_TIMEOUT_CODE = 4


@dataclass(frozen=True, slots=True)
class _Signed:
    raw_transaction: bytes
    hash: HexBytes


def _sign_eip1559(
    key: PrivateKey,
    *,
    chain_id: int,
    nonce: int,
    max_priority_fee: int,
    max_fee: int,
    gas: int,
    to: bytes,
    data: bytes,
) -> _Signed:
    """A signed EIP-1559 (type 2) transaction sending no value and no access list.

    The same bytes as `Account.sign_transaction` (signatures are deterministic,
    RFC 6979: a test compares the two), at a quarter of its cost, which is mostly
    the validation and formatting of a general transaction dict.
    """
    fields = [_rlp_int(chain_id), _rlp_int(nonce), _rlp_int(max_priority_fee), _rlp_int(max_fee)]
    fields += [_rlp_int(gas), _rlp_bytes(to), _rlp_int(0), _rlp_bytes(data), _rlp_list(b"")]
    unsigned = b"".join(fields)
    signature = key.sign_msg_hash(keccak(b"\x02" + _rlp_list(unsigned)))
    signed = unsigned + _rlp_int(signature.v) + _rlp_int(signature.r) + _rlp_int(signature.s)
    raw = b"\x02" + _rlp_list(signed)
    return _Signed(raw, HexBytes(keccak(raw)))


def _rlp_bytes(value: bytes) -> bytes:
    if len(value) == 1 and value[0] < 0x80:
        return value
    return _rlp_length(len(value), 0x80) + value


def _rlp_int(value: int) -> bytes:
    return _rlp_bytes(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _rlp_list(encoded_items: bytes) -> bytes:
    return _rlp_length(len(encoded_items), 0xC0) + encoded_items


def _rlp_length(length: int, offset: int) -> bytes:
    if length <= 55:
        return bytes([offset + length])
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([offset + 55 + len(size)]) + size


class _Unconfirmed(Exception):
    """The node took the transaction but gave no receipt in time: poll for it."""


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
        # Plain JSON-RPC for the per-settlement calls (see the module docstring).
        self._lean = isinstance(w3.provider, JSONBaseProvider)
        # Every answer read over HTTP has a deadline and a size cap, on our own connections
        # and on web3's requests session alike (which serves what ours does not).
        bound_http_provider(w3.provider)
        self._http = _HttpJsonRpc.for_provider(w3.provider)

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
            return None if answer is None else _receipt(answer, tx_hash)
        try:
            found = self._w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            return None
        return _receipt_of(found, tx_hash)

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

    def _signed(self, to: str, data: bytes, gas: int) -> _Signed:
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
        return _sign_eip1559(
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
                return _receipt(answer, tx_hash)
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


# A keep-alive connection idle this long may have been closed by the node (or a load
# balancer in front of it): open a new one rather than find out by a failed send.
_IDLE_SECONDS = 4.0
_PLAIN_REQUEST_KWARGS = frozenset({"timeout", "headers"})


class _HttpJsonRpc:
    """JSON-RPC over keep-alive HTTP/1.1 connections, sending what web3's provider would send.

    Thread-safe: each request takes an idle connection (or opens one) and gives it
    back, so a send waiting for its receipt never holds up a call in another thread.
    """

    def __init__(
        self, url: str, *, timeout: float, headers: Mapping[str, str], max_bytes: int = MAX_ANSWER_BYTES
    ) -> None:
        parts = urlsplit(url)
        self._max_bytes = max_bytes
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if self._https else 80)
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._timeout = timeout
        self._headers = {**headers, "Connection": "keep-alive"}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._idle: list[tuple[http.client.HTTPConnection, float]] = []

    @classmethod
    def for_provider(cls, provider: object) -> _HttpJsonRpc | None:
        """One for a plain `HTTPProvider`; None where requests' extras matter (proxies, auth, TLS options)."""
        if type(provider) is not HTTPProvider:
            return None
        url = str(provider.endpoint_uri or "")
        parts = urlsplit(url)
        kwargs = dict(provider.get_request_kwargs())
        if (
            parts.scheme not in ("http", "https")
            or parts.username is not None
            or not set(kwargs) <= _PLAIN_REQUEST_KWARGS
            or _proxied(parts.hostname or "")
        ):
            return None
        timeout = kwargs.get("timeout", DEFAULT_ANSWER_SECONDS)
        if not isinstance(timeout, (int, float)):
            return None  # a (connect, read) pair: leave it to requests
        headers = {**HTTPProvider.get_request_headers(), **dict(kwargs.get("headers") or {})}
        return cls(url, timeout=float(timeout), headers=headers)

    def request(self, method: str, params: list[Any], *, timeout: float | None = None) -> dict[str, Any]:
        """The decoded JSON-RPC response; transport failures raise as requests' would.

        `timeout`: seconds to wait for the whole answer, when less than the connections' own.
        The connections' own is a deadline for the whole answer too (headers and body), not
        for each read: a node trickling bytes cannot hold a call past it (`ReadTimeout`),
        nor can an answer over `max_bytes` be read into memory (`AnswerTooLarge`).
        """
        body = json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": next(self._ids)})
        wait = self._timeout if timeout is None else min(timeout, self._timeout)
        status, data = self._post(body.encode(), wait)
        if status >= 400 and not data.startswith(b"{"):
            raise HTTPError(f"{status} error from the JSON-RPC node")
        try:
            answer = json.loads(data)
        except ValueError as exc:
            raise HTTPError(f"the JSON-RPC node answered {status} with a body that is not JSON") from exc
        if not isinstance(answer, dict):
            raise HTTPError("the JSON-RPC node answered with something other than one JSON object")
        return answer

    def _post(self, body: bytes, wait: float) -> tuple[int, bytes]:
        connection = self._take()
        reused = connection is not None
        if connection is None:
            connection = self._connect()
        try:
            try:
                status, data, keep = self._exchange(connection, body, wait)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                connection.close()
                if not reused:
                    raise
                # The node closed the kept-alive connection: once more on a new one. A
                # repeated send is the same transaction (see `Relayer.send`).
                connection = self._connect()
                status, data, keep = self._exchange(connection, body, wait)
        except TimeoutError as exc:
            connection.close()
            raise ReadTimeout(f"the JSON-RPC node did not answer within {wait:g} s") from exc
        except AnswerTooLarge:
            connection.close()
            raise
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise RequestsConnectionError(
                f"the connection to the JSON-RPC node failed ({type(exc).__name__})"
            ) from exc
        if keep:
            with self._lock:
                self._idle.append((connection, time.monotonic()))
        else:
            connection.close()
        return status, data

    def _exchange(
        self, connection: http.client.HTTPConnection, body: bytes, wait: float
    ) -> tuple[int, bytes, bool]:
        deadline = time.monotonic() + wait
        if connection.sock is not None:
            connection.sock.settimeout(wait)
        # Every read of the answer (status line, headers, body) waits only until `deadline`.
        connection.response_class = functools.partial(DeadlineResponse, deadline=deadline)  # type: ignore[assignment]
        connection.request("POST", self._path, body, self._headers)
        response = connection.getresponse()
        data = read_capped(response, self._max_bytes)
        return response.status, data, not response.will_close

    def _take(self) -> http.client.HTTPConnection | None:
        """The most recently used idle connection, unless it has idled long enough to be closed."""
        now = time.monotonic()
        with self._lock:
            while self._idle:
                connection, used = self._idle.pop()
                if now - used <= _IDLE_SECONDS:
                    return connection
                connection.close()
        return None

    def _connect(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if self._https:
            connection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout, context=_tls_context()
            )
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            connection.connect()
        except TimeoutError as exc:
            raise ConnectTimeout(f"no connection to the JSON-RPC node within {self._timeout:g} s") from exc
        except OSError as exc:
            raise RequestsConnectionError(
                f"no connection to the JSON-RPC node ({type(exc).__name__})"
            ) from exc
        if connection.sock is not None:
            # http.client writes headers and body separately: without this, Nagle's algorithm
            # meets the node's delayed ACK and a request can wait about 40 ms.
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection


def _proxied(host: str) -> bool:
    """Whether requests would send to `host` through a proxy from the environment."""
    proxies = urllib.request.getproxies()
    return bool(proxies) and not urllib.request.proxy_bypass(host)


def _tls_context() -> ssl.SSLContext:
    # The CA bundle requests would use, so that what verifies there verifies here.
    try:
        import certifi
    except ImportError:  # pragma: no cover - requests depends on certifi
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def _block_param(block: BlockIdentifier) -> str:
    if isinstance(block, int):
        return hex(block)
    if isinstance(block, bytes):
        return "0x" + block.hex()
    return str(block)


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


def _receipt_of(receipt: TxReceipt, tx_hash: HexBytes) -> TxReceipt:
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


def _receipt(answer: Mapping[str, Any], tx_hash: HexBytes) -> TxReceipt:
    """The fields of the JSON-RPC receipt of `tx_hash` that settlement and lookups read, typed
    as web3 types them.

    Raises:
        SettlementError: it is another transaction's receipt (see `_receipt_of`).
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
    return _receipt_of(cast(TxReceipt, receipt), tx_hash)

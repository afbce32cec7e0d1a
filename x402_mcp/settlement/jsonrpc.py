"""JSON-RPC over keep-alive HTTP connections of our own, for the calls of every settlement.

The requests session under web3's `HTTPProvider` costs a few times a loopback
node's answer (it re-reads the proxy environment on every request), so a plain
HTTP provider gets these connections instead (`HttpJsonRpc.for_provider`); any
other (proxies, auth, TLS options) keeps web3's. Transport failures raise as
requests' would (`ConnectionError`, `ConnectTimeout`, `ReadTimeout`, `HTTPError`),
so error handling is the same either way; every answer has a deadline for the
whole answer and a size cap (see `bounded`).
"""

from __future__ import annotations

import functools
import http.client
import itertools
import json
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import ConnectTimeout, HTTPError, ReadTimeout
from web3 import HTTPProvider

from .bounded import DEFAULT_ANSWER_SECONDS, MAX_ANSWER_BYTES, AnswerTooLarge, DeadlineResponse, read_capped

__all__ = ["HttpJsonRpc"]

# A keep-alive connection idle this long may have been closed by the node (or a load
# balancer in front of it): open a new one rather than find out by a failed send.
_IDLE_SECONDS = 4.0
_PLAIN_REQUEST_KWARGS = frozenset({"timeout", "headers"})


class HttpJsonRpc:
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
    def for_provider(cls, provider: object) -> HttpJsonRpc | None:
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

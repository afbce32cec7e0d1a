"""Bounds on what a JSON-RPC node may make us wait for and read: a deadline and a size cap.

A node (or anything posing as one) can trickle an answer a byte at a time, which
a per-read timeout never ends, or send an answer of any size. Settlement holds a
paid call while it waits, so every answer read over HTTP has a deadline for the
whole answer and a size cap: our own keep-alive connections enforce them in
`jsonrpc.HttpJsonRpc`, and web3's requests session (which carries what ours do
not: the chain id, code and log reads, and every call through a proxy) gets a
`BoundedSession` from `bound_http_provider`. Either failure is a backend failure,
which settlement turns into a `SettlementError`: the request then stays out of
`issued` whenever money may have moved.
"""

from __future__ import annotations

import http.client
import io
import socket
import time
from typing import Any

import requests
from web3 import HTTPProvider

from ..errors import SettlementError

__all__ = [
    "DEFAULT_ANSWER_SECONDS",
    "MAX_ANSWER_BYTES",
    "AnswerTooLarge",
    "AnswerTooSlow",
    "BoundedSession",
    "DeadlineResponse",
    "bound_http_provider",
    "read_capped",
]

DEFAULT_ANSWER_SECONDS = 10.0
"""The default deadline for one whole JSON-RPC answer, when the provider names none."""

MAX_ANSWER_BYTES = 4 * 1024 * 1024
"""The largest JSON-RPC answer read: receipts, logs of one authorization and calls are a few KiB."""

_CHUNK = 64 * 1024


class AnswerTooLarge(SettlementError):
    """The node's answer is over the size cap; it was not read to the end.

    Not a requests exception on purpose: web3 retries those, which would multiply the
    bounds by its retry count.
    """


class AnswerTooSlow(SettlementError):
    """The node's answer did not arrive whole by its deadline (see `AnswerTooLarge` on why)."""


class BoundedSession(requests.Session):
    """A requests session whose answers must arrive whole within `deadline` seconds and
    weigh at most `max_bytes`.

    The body is read as it streams in, a recv at a time, so the deadline is checked
    between reads; each read itself still waits at most the request's own timeout,
    so a trickle ends at most one such timeout past the deadline.
    """

    def __init__(self, deadline: float, max_bytes: int = MAX_ANSWER_BYTES) -> None:
        super().__init__()
        self.deadline = deadline
        self.max_bytes = max_bytes

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        ends = time.monotonic() + self.deadline
        kwargs["stream"] = True
        response = super().request(method, url, *args, **kwargs)
        try:
            # What requests' own `.content` sets, read under our bounds instead.
            response._content = self._body(response, ends)
        except BaseException:
            response.close()
            raise
        response._content_consumed = True
        return response

    def _body(self, response: requests.Response, ends: float) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise AnswerTooLarge(f"the JSON-RPC node announced an answer of {declared} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            if time.monotonic() > ends:
                raise AnswerTooSlow(
                    f"the JSON-RPC node's answer did not arrive whole within {self.deadline:g} s"
                )
            chunk = response.raw.read1(_CHUNK)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_bytes:
                raise AnswerTooLarge(f"the JSON-RPC node's answer is over {self.max_bytes} bytes")
            chunks.append(chunk)


def bound_http_provider(provider: object) -> None:
    """Give web3's `HTTPProvider` a `BoundedSession`, unless its owner chose a session of their own.

    The deadline is the provider's `timeout` request option when it is one number,
    else `DEFAULT_ANSWER_SECONDS`.
    """
    if not isinstance(provider, HTTPProvider):
        return
    manager = provider._request_session_manager
    if getattr(manager, "_explicit_session", None) is not None:
        return
    timeout = dict(provider.get_request_kwargs()).get("timeout", DEFAULT_ANSWER_SECONDS)
    deadline = float(timeout) if isinstance(timeout, (int, float)) else DEFAULT_ANSWER_SECONDS
    manager._explicit_session = BoundedSession(deadline)


class _DeadlineSocketReader(io.RawIOBase):
    """Reads a socket, each read waiting only for what is left until `deadline` (monotonic)."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the whole answer did not arrive in time")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)


class DeadlineResponse(http.client.HTTPResponse):
    """An `HTTPResponse` whose every read ends by `deadline`: a trickle cannot outlast it."""

    def __init__(self, sock: socket.socket, *args: Any, deadline: float, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        original = self.fp
        self.fp = io.BufferedReader(_DeadlineSocketReader(sock, deadline))
        original.close()  # nothing was read through it yet; it only held a reference to the socket


def read_capped(response: http.client.HTTPResponse, limit: int) -> bytes:
    """The body of `response`, refused once it is over `limit` bytes (declared or read)."""
    if response.length is not None and response.length > limit:
        response.close()
        raise AnswerTooLarge(f"the JSON-RPC node announced an answer of {response.length} bytes")
    chunks: list[bytes] = []
    size = 0
    while chunk := response.read(min(64 * 1024, limit + 1 - size)):
        size += len(chunk)
        if size > limit:
            response.close()
            raise AnswerTooLarge(f"the JSON-RPC node's answer is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)

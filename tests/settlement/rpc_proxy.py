"""A recording JSON-RPC proxy: forwards every HTTP POST to a node and notes the methods asked.

    with RecordingProxy("http://127.0.0.1:8545") as proxy:
        ...  # point a client at proxy.url
        proxy.take()  # the methods seen since the last take, in order

Used to count the JSON-RPC calls a paid call costs (by bench/bench_server.py and
by the tests), whatever the stack and its language: it sees the wire. It can also
play a node that lacks some methods (`missing`): those are answered "method not
found" (-32601) without reaching the node.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Collection
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.settlement.loopback import LoopbackServer

__all__ = ["RecordingProxy"]


class RecordingProxy(LoopbackServer):
    """Listens on a free loopback port; `url` is where to send JSON-RPC instead of `upstream`."""

    def __init__(self, upstream: str, *, missing: Collection[str] = ()) -> None:
        super().__init__(upstream)
        self._missing = frozenset(missing)
        self._seen: list[str] = []
        self._seen_lock = threading.Lock()
        self._local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as JSON-RPC clients expect

            def setup(self) -> None:
                super().setup()
                # Header and body go out in separate writes: without this, Nagle's algorithm
                # meets the client's delayed ACK and every answer waits about 40 ms.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                missing = proxy._record(body)
                status, answer = (200, missing) if missing is not None else proxy._forward(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._serve(Handler)

    def take(self) -> list[str]:
        """The JSON-RPC methods forwarded since the last `take` (a batch counts each of its calls)."""
        with self._seen_lock:
            seen, self._seen = self._seen, []
        return seen

    def _record(self, body: bytes) -> bytes | None:
        """Note the methods of `body`; the answer to give instead of the node's, if one is missing."""
        try:
            message = json.loads(body)
        except ValueError:
            message = None
        calls = message if isinstance(message, list) else [message]
        with self._seen_lock:
            self._seen.extend(
                str(call.get("method")) if isinstance(call, dict) else "<not JSON-RPC>" for call in calls
            )
        if isinstance(message, dict) and message.get("method") in self._missing:
            error = {"code": -32601, "message": "Method not found"}
            return json.dumps({"jsonrpc": "2.0", "id": message.get("id"), "error": error}).encode()
        return None

    def _forward(self, body: bytes) -> tuple[int, bytes]:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        for attempt in (1, 2):
            if connection is None:
                connection = http.client.HTTPConnection(*self._upstream, timeout=60)
                connection.connect()
                assert connection.sock is not None
                connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._local.connection = connection
            try:
                connection.request("POST", "/", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, OSError):
                connection.close()
                connection = self._local.connection = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

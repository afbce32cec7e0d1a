"""A lying JSON-RPC node: a real HTTP server on loopback in front of a real chain, rewriting answers.

    with LyingNode(anvil.rpc_url, lie=...) as node:
        ...  # point a settlement backend at node.url

`lie(method, params, answer)` may return another answer (a JSON-RPC response
object) or None to pass the real one on; `forge(method, params)` may answer
(`{"result": ...}`) without asking the chain at all; `before(method, params)` runs before a
call is forwarded (to front-run it, say). `trickle` methods have their answer
sent a byte at a time, `trickle_delay` apart; `huge` methods are answered with
an endless body (`declared` or not), counting in `huge_sent` what it could send.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Collection
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.settlement.loopback import LoopbackServer

__all__ = ["LyingNode"]

Lie = Callable[[str, list[Any], dict[str, Any]], dict[str, Any] | None]


class LyingNode(LoopbackServer):
    def __init__(
        self,
        upstream: str,
        *,
        lie: Lie | None = None,
        forge: Callable[[str, list[Any]], dict[str, Any] | None] | None = None,
        before: Callable[[str, list[Any]], None] | None = None,
        trickle: Collection[str] = (),
        trickle_delay: float = 0.25,
        huge: Collection[str] = (),
        declared: bool = True,
    ) -> None:
        super().__init__(upstream)
        self.lie = lie
        self.forge = forge
        self.before = before
        self.trickle = frozenset(trickle)
        self.huge = frozenset(huge)
        self.declared = declared
        self.trickle_delay = trickle_delay
        self.huge_sent = 0
        self.seen: list[str] = []
        node = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                call = json.loads(body)
                method, params = str(call.get("method")), list(call.get("params") or [])
                node.seen.append(method)
                if method in node.huge:
                    self._endless(node.declared)
                    return
                if node.before is not None:
                    node.before(method, params)
                forged = node.forge(method, params) if node.forge is not None else None
                if forged is not None:
                    answer = {"jsonrpc": "2.0", "id": call.get("id"), **forged}
                else:
                    answer = json.loads(node.forward(body))
                if node.lie is not None and forged is None:
                    answer = node.lie(method, params, answer) or answer
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    if method in node.trickle:
                        for index in range(len(data)):
                            self.wfile.write(data[index : index + 1])
                            self.wfile.flush()
                            time.sleep(node.trickle_delay)
                    else:
                        self.wfile.write(data)
                except OSError:
                    return  # the client gave up, as it should

            def _endless(self, declared: bool) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if declared:
                    self.send_header("Content-Length", str(96 * 1024 * 1024))
                else:
                    self.send_header("Connection", "close")
                self.end_headers()
                block = b'{"jsonrpc":"2.0","id":1,"result":"0x' + b"0" * 65536
                try:
                    for _ in range(96 * 16):  # 96 MiB
                        self.wfile.write(block)
                        node.huge_sent += len(block)
                except OSError:
                    pass
                self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._serve(Handler)

    def forward(self, body: bytes) -> bytes:
        """The real node's answer to `body`."""
        connection = http.client.HTTPConnection(*self._upstream, timeout=60)
        try:
            connection.request("POST", "/", body, {"Content-Type": "application/json"})
            return connection.getresponse().read()
        finally:
            connection.close()

    def ask(self, method: str, params: list[Any]) -> Any:
        """The real node's result for one call (for lies built from the truth)."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
        return json.loads(self.forward(body))["result"]

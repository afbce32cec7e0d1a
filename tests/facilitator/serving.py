"""Serving an ASGI app on a loopback port for the length of a test (real uvicorn, real TCP)."""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import uvicorn

TOKEN = "test-" + secrets.token_hex(16)
"""The bearer token of the facilitator servers the tests start (`x402-mcp facilitator` needs one)."""


def loopback_socket() -> socket.socket:
    # IPPROTO_TCP explicitly: with proto 0 asyncio does not set TCP_NODELAY on accepted
    # connections, and Nagle plus delayed ACKs add about 40 ms to every request.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1 in this event loop; yields its base URL."""
    sock = loopback_socket()
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve, [sock])
        with anyio.fail_after(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
                await anyio.sleep(0.005)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            # Do not wait for requests a test left stalled on purpose.
            server.force_exit = True
    sock.close()


class Interposer:
    """Sits between a client and a real facilitator app, as a network or proxy would.

    It records each request's path and headers and can: answer the first
    `unavailable` verify requests with 503, delay a path's request (`stall_before`)
    or its answer after the facilitator acted (`stall_after`), and rewrite the
    status of an answer (`status_of(path, status, messages) -> status`); `on_request(path)`
    runs just before a request reaches the facilitator.
    """

    def __init__(
        self,
        app: Any,
        *,
        unavailable: int = 0,
        stall_before: dict[str, float] | None = None,
        stall_after: dict[str, float] | None = None,
        status_of: Any = None,
        on_request: Any = None,
    ) -> None:
        self.app = app
        self.unavailable = unavailable
        self.stall_before = stall_before or {}
        self.stall_after = stall_after or {}
        self.status_of = status_of
        self.on_request = on_request
        self.seen: list[tuple[str, dict[str, str]]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        self.seen.append((path, {k.decode(): v.decode() for k, v in scope["headers"]}))
        if path == "/verify" and self.unavailable > 0:
            self.unavailable -= 1
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"busy"})
            return
        await anyio.sleep(self.stall_before.get(path, 0))
        if self.on_request is not None:
            self.on_request(path)
        messages: list[dict[str, Any]] = []

        async def keep(message: dict[str, Any]) -> None:
            messages.append(message)

        await self.app(scope, receive, keep)
        await anyio.sleep(self.stall_after.get(path, 0))
        for message in messages:
            if message["type"] == "http.response.start" and self.status_of is not None:
                message = {**message, "status": self.status_of(path, message["status"], messages)}
            await send(message)


class LyingFacilitator:
    """Our real facilitator, except that `/settle` claims success without settling anything.

    Every other request reaches the real app. The claimed transaction is `transaction()`:
    a made-up hash, say, or the hash of a real but unrelated transfer. `settles` counts
    the lies told.
    """

    def __init__(self, app: Any, transaction: Any) -> None:
        self.app = app
        self.transaction = transaction
        self.settles = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/settle":
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = json.loads(body)
        self.settles += 1
        answer = {
            "success": True,
            "transaction": self.transaction(),
            "network": request["paymentRequirements"]["network"],
            "payer": request["paymentPayload"]["payload"]["authorization"]["from"],
        }
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(answer).encode()})

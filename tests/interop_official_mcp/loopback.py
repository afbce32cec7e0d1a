"""Serve an ASGI app on a free loopback port and announce the port through a file.

Stdlib, anyio and uvicorn only, so both environments can import it: the official
server script (run by the mcp 1.x venv) and our benchmark's server process.
"""

from __future__ import annotations

import socket
from typing import Any

import anyio
import uvicorn


def serve_announcing_port(app: Any, port_file: str) -> None:
    """Run `app` until killed; once it accepts connections, write its port to `port_file`."""
    # IPPROTO_TCP explicitly: with proto 0 asyncio leaves Nagle on, costing ~40 ms per request.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    web = uvicorn.Server(uvicorn.Config(app, log_level="warning"))

    async def serve() -> None:
        async def announce() -> None:
            while not web.started:  # noqa: ASYNC110 (uvicorn offers a flag, no event)
                await anyio.sleep(0.01)
            # Written whole, then renamed: the reader never sees half a port number.
            await anyio.Path(port_file + ".tmp").write_text(str(sock.getsockname()[1]))
            await anyio.Path(port_file + ".tmp").rename(port_file)

        async with anyio.create_task_group() as group:
            group.start_soon(announce)
            await web.serve(sockets=[sock])

    anyio.run(serve)

"""Serving an ASGI app on loopback for a test (no MCP SDK import: usable on either SDK line)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
from starlette.types import ASGIApp

from x402_mcp.page.httpguard import SideServer as _SideServer
from x402_mcp.page.serving import _bind

__all__ = ["serving"]


@contextlib.asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free loopback port; yield its base URL."""
    import uvicorn

    listener = _bind(0)
    port = listener.getsockname()[1]
    server = _SideServer(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve, [listener])
        with anyio.fail_after(10):
            await server.ready.wait()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True

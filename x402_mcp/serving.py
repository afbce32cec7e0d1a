"""Where the payment page of a `Payments` is served, and the link challenges carry.

- Streamable HTTP: the page's routes are custom routes of the MCP server, so
  `server.run("streamable-http")` or `server.streamable_http_app()` serve them
  beside `/mcp`; without an explicit `public_url` the link is the address the
  client reached the server at.
- stdio (Claude Desktop): the first challenge starts the page on a side port
  of this process (`page_port`, or a free port when that one is taken), on
  loopback, inside the server's lifespan; the link names the port bound.
- Its own process: `page_app(payments)` is a plain Starlette app sharing the
  ledger (`x402-mcp page`).
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Generator
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import uvicorn
from starlette.applications import Starlette

from . import _sdk
from .devchain import DevChain
from .page import DemoWallet, PaymentPage

if TYPE_CHECKING:
    from .gate import Payments

logger = logging.getLogger("x402_mcp")

DEFAULT_PAGE_PORT = 8402
LOOPBACK = "127.0.0.1"
START_TIMEOUT_SECONDS = 10.0


def build_page(payments: Payments, *, server_name: str | None = None) -> PaymentPage:
    """The `PaymentPage` for `payments` (with the demo wallet only on a DevChain)."""
    chain = payments.demo_chain
    name = server_name or getattr(payments.server, "name", None) or "MCP server"
    return PaymentPage(
        payments.collector,
        lambda: payments.offer,
        server_name=str(name),
        demo_wallet=DemoWallet(chain) if isinstance(chain, DevChain) else None,
    )


def page_app(payments: Payments, *, server_name: str | None = None) -> Starlette:
    """The page as an ASGI app of its own, e.g. for a separate process sharing the ledger."""
    return build_page(payments, server_name=server_name).app()


class PageLink:
    """Serves one `Payments`' page and knows the URL its challenges link to."""

    def __init__(self, payments: Payments, page_port: int = DEFAULT_PAGE_PORT) -> None:
        self.payments = payments
        self.page_port = page_port
        self.url: str | None = None
        self._background: anyio.abc.TaskGroup | None = None
        self._starting = anyio.Lock()
        self._side: _SideServer | None = None

    def install(self, server: Any) -> None:
        """Add the page's routes to `server` and let its lifespan host a side port."""
        page = build_page(self.payments, server_name=getattr(server, "name", None))
        for route in page.routes():
            server.custom_route(route.path, methods=sorted(route.methods or ()))(route.endpoint)
        _sdk.wrap_lifespan(server, self._lifespan)

    @contextlib.asynccontextmanager
    async def _lifespan(self) -> AsyncIterator[None]:
        async with anyio.create_task_group() as group:
            self._background = group
            try:
                yield
            finally:
                self._background = None
                if self._side is not None:
                    self._side.should_exit = True
                    self._side = None
                group.cancel_scope.cancel()

    async def ensure(self, http_request: Any) -> None:
        """Make sure the link points somewhere that serves the page.

        `http_request` is the Starlette request of an HTTP call (None over stdio).
        """
        if self.payments.public_url is not None or self.url is not None:
            return
        if http_request is not None:
            # Served beside /mcp: the address the client used reaches the page too.
            self.url = str(http_request.base_url).rstrip("/")
            return
        await self.start_side_port()

    async def start_side_port(self) -> str | None:
        """Serve the page on loopback (`page_port`, else a free port); return its URL."""
        async with self._starting:
            if self.url is not None:
                return self.url
            if self._background is None:
                logger.warning("no server lifespan is running, so the payment page has no side port")
                return None
            listener = _bind(self.page_port)
            port = listener.getsockname()[1]
            config = uvicorn.Config(
                build_page(self.payments).app(),
                log_config=None,  # stdout is the MCP channel of a stdio server: never log there
                access_log=False,
                lifespan="off",
            )
            self._side = _SideServer(config)
            self._background.start_soon(self._side.serve, [listener])
            with anyio.fail_after(START_TIMEOUT_SECONDS):
                await self._side.ready.wait()
            self.url = f"http://{LOOPBACK}:{port}"
            logger.info("payment page listening on %s", self.url)
            return self.url


class _SideServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = anyio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()

    # The MCP server owns the process's signals; a side page must not take them over.
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _bind(port: int) -> socket.socket:
    """A loopback listening socket on `port`, or on a free port when that one is taken."""
    for candidate in (port, 0) if port else (0,):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, candidate))
        except OSError:
            sock.close()
            continue
        sock.listen(128)
        sock.setblocking(False)
        return sock
    raise OSError("could not bind a loopback port for the payment page")

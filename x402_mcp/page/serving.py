"""Where the payment page of a `Payments` is served, and the link challenges carry.

- Streamable HTTP: the page is mounted beside `/mcp` as custom routes of the
  MCP server, so `server.run("streamable-http")` or `server.streamable_http_app()`
  serve it.
- stdio (Claude Desktop): the first challenge starts the page on a side port
  of this process (`page_port`, or a free port when that one is taken), on
  loopback, inside the server's lifespan; the link names the port bound.
- Its own process: `page_app(payments)` is an ASGI app sharing the ledger
  (`x402-mcp page`).

Where links point is decided by configuration, never by a request. A link is
where payers sign, so a `Host` header that chose it (even once, even from
loopback: any port on 127.0.0.1 passes the MCP server's DNS-rebinding check,
and behind a proxy any host does) could send every later payer to a page of
an attacker's choosing. So the link base is `public_url` (`X402_PUBLIC_URL`)
when set; without it, the address of this server's own socket that the call
arrived on (the ASGI scope's `server`), which nothing a client sends can
change; and when even that is unknown (a Unix socket), the loopback side port.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.abc
from starlette.types import ASGIApp

from ..core.challenge import Offer
from ..core.links import DEFAULT_PAGE_PORT, LOOPBACK, own_base, public_base
from ..core.text import shown
from .app import PaymentPage
from .ports import PageCollector, demo_signer_for

__all__ = [
    "DEFAULT_PAGE_PORT",
    "PageLink",
    "Payments",
    "build_page",
    "own_base",
    "page_app",
    "public_base",
]

if TYPE_CHECKING:
    from .httpguard import SideServer

logger = logging.getLogger("x402_mcp")

START_TIMEOUT_SECONDS = 10.0
# Every method reaches the page's own router, so even a 405 carries its security headers.
ROUTED_METHODS = ["DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT"]


class Payments(Protocol):
    """What the page needs of the gate it serves (`Gate` is one): kept as a protocol so this
    module, a layer below the gate, never imports it."""

    public_url: str | None
    demo_chain: Any
    server: Any

    @property
    def collector(self) -> PageCollector: ...

    @property
    def offer(self) -> Offer: ...

    @property
    def link(self) -> PageLink: ...

    async def open_ledger(self) -> None: ...


# The base links name while one HTTP call is handled (each call runs in its own task).
_call_base: contextvars.ContextVar[str | None] = contextvars.ContextVar("x402_mcp_link_base", default=None)


def build_page(payments: Payments, *, server_name: str | None = None) -> PaymentPage:
    """The `PaymentPage` for `payments` (with the demo wallet only on a DevChain)."""
    name = server_name or getattr(payments.server, "name", None) or "MCP server"
    return PaymentPage(
        payments.collector,
        lambda: payments.offer,
        link_base=lambda scope: payments.link.base_for(scope) or payments.offer.public_url,
        server_name=str(name),
        demo_wallet=demo_signer_for(payments.demo_chain, getattr(payments, "settlement", None)),
        open_ledger=payments.open_ledger,
    )


def page_app(payments: Payments, *, server_name: str | None = None) -> ASGIApp:
    """The page as an ASGI app of its own, e.g. for a separate process sharing the ledger."""
    return build_page(payments, server_name=server_name).app()


class PageLink:
    """Serves one `Payments`' page and knows the URL its challenges link to."""

    def __init__(self, payments: Payments, page_port: int = DEFAULT_PAGE_PORT) -> None:
        self.payments = payments
        self.page_port = page_port
        self._side_url: str | None = None
        self._first_served: str | None = None
        self._warned = False
        self._background: anyio.abc.TaskGroup | None = None
        self._starting = anyio.Lock()
        self._side: SideServer | None = None

    @property
    def url(self) -> str | None:
        """The base links name now: this HTTP call's own address, else the side port, else
        the first own address seen (None before any; `public_url` wins over all of them)."""
        return _call_base.get() or self._side_url or self._first_served

    def install(
        self,
        add_route: Callable[[str, list[str], ASGIApp], None],
        server_name: str | None = None,
    ) -> None:
        """Mount the page with `add_route(path, methods, app)`, beside the server's other routes.

        Each framework door passes its own way of adding a route; it also enters
        `lifespan()` inside the server's lifespan so a stdio run can host a side port.

        Raises:
            ConfigurationError: `public_url` is not an http(s) URL.
        """
        if self.payments.public_url is not None:
            self.payments.public_url = public_base(self.payments.public_url)
        app = build_page(self.payments, server_name=server_name).app()
        # The whole /pay tree goes to the page's own app, whose 404, 405 and 500
        # answers carry the page's headers too; /mcp and other routes are untouched.
        for path in ("/pay", "/pay/{path:path}"):
            add_route(path, ROUTED_METHODS, app)
        from .operator import operator_page

        operator = operator_page(self.payments, server_name or "MCP server")  # type: ignore[arg-type]
        if operator is not None:  # opt-in: an operator token
            for path in ("/operator", "/operator/{path:path}"):
                add_route(path, ROUTED_METHODS, operator)
        metrics = self.payments.collector.telemetry.endpoint
        if metrics is not None:  # opt-in: Payments(metrics=True) or a metrics token
            add_route("/metrics", ["GET"], metrics)

    def lifespan(self) -> contextlib.AbstractAsyncContextManager[None]:
        """The context a server's lifespan enters: it hosts the side port while it runs."""
        return self._lifespan()

    @contextlib.asynccontextmanager
    async def _lifespan(self) -> AsyncIterator[None]:
        # At start, not at the first paid call: a ledger that cannot be written stops the server here.
        await self.payments.open_ledger()
        # The author's payment hooks run for as long as the server does (telemetry/hooks.py).
        hooks = self.payments.collector.telemetry.hooks
        async with hooks.running(), anyio.create_task_group() as group:
            self._background = group
            try:
                yield
            finally:
                self._background = None
                if self._side is not None:
                    self._side.should_exit = True
                    self._side = None
                group.cancel_scope.cancel()

    def base_for(self, scope: Mapping[str, Any] | None) -> str | None:
        """The link base for a request with this ASGI scope: configured, else its own address."""
        if self.payments.public_url is not None:
            return self.payments.public_url
        return None if scope is None else own_base(scope)

    async def ensure(self, http_request: Any) -> None:
        """Make sure the link points somewhere that serves the page.

        `http_request` is the Starlette request of an HTTP call (None over stdio).
        """
        if self.payments.public_url is not None:
            return
        if http_request is not None:
            base = own_base(http_request.scope)
            if base is not None:
                _call_base.set(base)
                if self._first_served is None:
                    self._first_served = base
                self._advise(base, http_request.headers.get("host"))
                return
        if self._side_url is None:
            await self.start_side_port()

    def _advise(self, base: str, host: str | None) -> None:
        if self._warned:
            return
        self._warned = True
        logger.warning(
            "X402_PUBLIC_URL is not set, so payment links name this server's own address %s "
            '(requests ask for Host "%s"). Set X402_PUBLIC_URL (Payments(public_url=...)) to the URL '
            "payers open, which is required behind a proxy or load balancer.",
            base,
            shown(host or ""),
        )

    async def start_side_port(self) -> str | None:
        """Serve the page on loopback (`page_port`, else a free port); return its URL."""
        async with self._starting:
            if self._side_url is not None:
                return self._side_url
            if self._background is None:
                logger.warning("no server lifespan is running, so the payment page has no side port")
                return None
            listener = _bind(self.page_port)
            port = listener.getsockname()[1]
            # uvicorn's protocol classes load only for a server that needs a side port.
            from .httpguard import SideServer, guarded_config

            # Strangers reach this port: a request head, like a body, must arrive in time.
            config = guarded_config(
                build_page(self.payments).app(),
                log_config=None,  # stdout is the MCP channel of a stdio server: never log there
                access_log=False,
                lifespan="off",
            )
            self._side = SideServer(config)
            self._background.start_soon(self._side.serve, [listener])
            with anyio.fail_after(START_TIMEOUT_SECONDS):
                await self._side.ready.wait()
            self._side_url = f"http://{LOOPBACK}:{port}"
            logger.info("payment page listening on %s", self._side_url)
            return self._side_url


def _bind(port: int) -> socket.socket:
    """A loopback listening socket on `port`, or on a free port when that one is taken."""
    for candidate in (port, 0) if port else (0,):
        # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY on accepted connections only for a
        # socket whose proto says TCP; without it Nagle and delayed ACKs add ~40 ms to every
        # answer written in two parts (the page's status polls, wallet POSTs, x402 clients).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
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

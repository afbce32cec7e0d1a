"""`Payments`: the gate, installed on an MCP server of either framework.

```python
server = MCPServer("research", extensions=[payments])   # the MCP SDK 2.x
payments.install(server)                                 # MCP SDK 1.x FastMCP, FastMCP 3 and 4
async with payments: ...                                 # its resources, outside a server
```

`Payments` composes a `Gate` (the configuration and the driver of the money
path) and picks the door (`x402_mcp.frameworks`) for the server it meets. It
owns the gate's resources as an async context manager: the ledger, the
settlement client, the page's side port and the upkeep task; a server's
lifespan enters the same (`Gate.running`).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

from mcp_types import CallToolRequestParams

from ..core.networks import Asset, Network
from ..core.pricing import PaidTool
from ..errors import ConfigurationError
from ..gate import Gate, ToolCall
from ..gate.redemption import Redemption
from ..gate.sweeper import Sweeper
from ..ledger.base import Ledger, Owner
from ..page.serving import PageLink
from ..settlement.base import Settlement
from ..telemetry import Hook, Telemetry
from .detect import framework_of
from .sdk_line import IDENTIFIER, SdkExtension

if TYPE_CHECKING:
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

    from .mcpserver import MCPServerDoor

NOT_INSTALLED = (
    "Payments is not installed on a server: pass it as MCPServer(..., extensions=[payments]), "
    "or call payments.install(server) on an MCP SDK 1.x FastMCP or a fastmcp.FastMCP server"
)

T = TypeVar("T")


class _OfTheGate(Generic[T]):
    """An attribute of `Payments` that is its gate's, read and written through."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, payments: Payments | None, owner: type | None = None) -> T:
        return getattr(payments.gate, self.name)  # type: ignore[no-any-return, union-attr]

    def __set__(self, payments: Payments, value: T) -> None:
        setattr(payments.gate, self.name, value)


class Payments(SdkExtension):
    """Charge for `@paid` tools on an `MCPServer` (`extensions=[payments]`), or on an MCP SDK 1.x
    `FastMCP` or a FastMCP 3 or 4 server (`payments.install(server)`). Takes the arguments of `Gate`.
    """

    identifier = IDENTIFIER

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.gate = kwargs.pop("_gate", None) or Gate(*args, **kwargs)
        # Set by `install` on an MCPServer.
        self._mcpserver: MCPServerDoor | None = None
        self._running = contextlib.AsyncExitStack()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """See `Gate.from_env`."""
        return cls(_gate=Gate.from_env(environ))

    # What is the gate's, as `payments.<name>` (read, and where it makes sense, set).
    pay_to: _OfTheGate[str] = _OfTheGate()
    network: _OfTheGate[Network] = _OfTheGate()
    asset: _OfTheGate[Asset] = _OfTheGate()
    owner: _OfTheGate[Owner] = _OfTheGate()
    settlement: _OfTheGate[Settlement] = _OfTheGate()
    ledger: _OfTheGate[Ledger] = _OfTheGate()
    public_url: _OfTheGate[str | None] = _OfTheGate()
    clock: _OfTheGate[Callable[[], float]] = _OfTheGate()
    demo_chain: _OfTheGate[Any] = _OfTheGate()
    max_timeout_seconds: _OfTheGate[int] = _OfTheGate()
    also_accept: _OfTheGate[tuple[Any, ...]] = _OfTheGate()
    telemetry: _OfTheGate[Telemetry] = _OfTheGate()
    collector: _OfTheGate[Any] = _OfTheGate()
    redemption: _OfTheGate[Redemption] = _OfTheGate()
    reconciler: _OfTheGate[Any] = _OfTheGate()
    sweeper: _OfTheGate[Sweeper] = _OfTheGate()
    link: _OfTheGate[PageLink] = _OfTheGate()
    operator_token: _OfTheGate[str | None] = _OfTheGate()

    @property
    def server(self) -> Any:
        """The server these payments are installed on (None before `install`)."""
        return self.gate.server

    @property
    def offer(self) -> Any:
        return self.gate.offer

    def settings(self) -> dict[str, Any]:
        return self.gate.settings()

    def use_default_ledger_of(self, server_name: str | None) -> None:
        """See `Gate.use_default_ledger_of`."""
        self.gate.use_default_ledger_of(server_name)

    async def open(self) -> None:
        """See `Gate.open`."""
        await self.gate.open()

    async def open_ledger(self) -> None:
        await self.gate.open_ledger()

    async def upkeep(self, *, force: bool = False) -> None:
        await self.gate.upkeep(force=force)

    async def handle(self, tool_call: ToolCall) -> Any:
        return await self.gate.handle(tool_call)

    def advertise(self, tool: dict[str, Any], spec: PaidTool) -> None:
        self.gate.advertise(tool, spec)

    async def __aenter__(self) -> Self:
        """Open the ledger, run upkeep as a task and host the page's side port, until exit."""
        await self._running.enter_async_context(self.gate.running())
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop upkeep and the side port; close the ledger and settlement client the gate made."""
        await self._running.aclose()

    def tools(self) -> tuple[()]:
        # Called by MCPServer while it applies extensions: our one chance to meet it.
        from . import _sdk

        server = _sdk.server_applying_extensions()
        if server is not None:
            self.install(server)
        return ()

    def install(self, server: Any) -> None:
        """Put the gate in front of `server`'s paid tools, its prices in `tools/list` and the
        payment page on its HTTP app and stdio side port.

        `MCPServer(extensions=[payments])` calls this itself; a FastMCP 4 server needs
        `payments.install(mcp)` (once, before it serves).

        Raises:
            ConfigurationError: `server` is of no supported framework, the payments are
                installed on another server already, a caching middleware would answer
                before the gate, or `public_url` is not an http(s) URL.
        """
        if self.server is server:
            return
        if self.server is not None:
            raise ConfigurationError(
                f"these Payments are installed on {self.server!r} already; one Payments serves one server"
            )
        framework = framework_of(server)
        if framework == "mcpserver":
            from .mcpserver import MCPServerDoor

            door = MCPServerDoor(self.gate, server)
            self.gate.server = server
            self._mcpserver = door
            door.attach()
            return
        if framework == "sdk1":
            from .sdk1 import SDK1Door

            SDK1Door(self.gate, server).attach()
            self.gate.server = server
            return
        if framework == "fastmcp":
            from .fastmcp import FastMCPDoor

            FastMCPDoor(self.gate, server).attach()
            self.gate.server = server
            return
        raise ConfigurationError(
            f"cannot install Payments on {type(server).__name__}: pass an mcp MCPServer "
            "(extensions=[payments]), an mcp.server.fastmcp.FastMCP or a fastmcp.FastMCP server"
        )

    def on(self, event: str, callback: Hook) -> Hook:
        """Run `async callback(event: PaymentEvent)` after each payment event of kind `event`
        (`quoted`, `paid`, `redeemed`, `refused`, `settlement_failed`, `reconciled`), once the
        ledger recorded it, off the call's path (see `x402_mcp.telemetry.hooks`).

        Returns `callback`. Raises `ConfigurationError` for an unknown event or a callback
        that is not an `async def` function.
        """
        return self.gate.telemetry.hooks.on(event, callback)

    attach = install
    """The name `install` had before FastMCP support; kept for callers of `attach(server)`."""

    def paid_tool(self, name: str) -> PaidTool | None:
        """The `@paid` marker of tool `name` on the `MCPServer` these payments are on, if any."""
        if self._mcpserver is None:
            raise ConfigurationError(NOT_INSTALLED)
        return self._mcpserver.paid_tool(name)

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if self._mcpserver is None:
            raise ConfigurationError(NOT_INSTALLED)
        return await self._mcpserver.intercept(params, ctx, call_next)


# The signature of `Payments(...)` is the gate's, for help() and documentation tools.
Payments.__init__.__signature__ = inspect.signature(Gate.__init__)  # type: ignore[attr-defined]

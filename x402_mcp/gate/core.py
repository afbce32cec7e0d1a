"""`Gate`: the framework-neutral gate in front of paid tools.

A framework door (`x402_mcp.frameworks`) reads each `tools/call` of a `@paid`
tool into a neutral `ToolCall` and hands it to `Gate.handle`. The call runs only
when it carries a payment that settles (`_meta["x402/payment"]`) or redeems a
request that is already paid (by id, or because it comes from the caller the
request was issued to). Otherwise the answer is a `requirePayment` challenge.
Nothing here knows which MCP framework serves the call.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Self

import anyio
from mcp_types import CallToolResult

from ..core.addresses import parse_address, parse_payee
from ..core.challenge import (
    Offer,
    describe_paid_tool,
)
from ..core.links import DEFAULT_PAGE_PORT
from ..core.networks import Asset, Network, resolve_network
from ..core.pricing import PaidTool
from ..core.text import shown
from ..errors import (
    ConfigurationError,
    InvalidPrice,
)
from ..ledger import open_ledger
from ..ledger._open import open_checked
from ..ledger.base import Ledger, Owner
from ..ledger.location import warn_of_legacy_ledger
from ..page.operator import operator_token as checked_operator_token
from ..page.serving import PageLink
from ..settlement.base import Settlement
from ..settlement.facilitator import default_settlement
from ..settlement.solana import Solana
from ..telemetry import Telemetry
from .batch import BatchOptions, batch_scheme
from .call import ToolCall
from .collect import Collector
from .config import default_ledger_url, network_known_to, settings_from_env
from .driver import Driver
from .reconcile import Reconciler
from .redemption import Redemption
from .sweeper import DEFAULT_RESULT_RETENTION_SECONDS, Sweeper
from .upkeep import Upkeep

logger = logging.getLogger("x402_mcp")

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8402"


class Gate:
    """Charge for `@paid` tools: settle, redeem, challenge or refuse each call (one place).

    Framework-neutral: a door (`x402_mcp.frameworks`) turns a framework's
    `tools/call` into a `ToolCall` and writes the `CallToolResult` back.

    Args:
        pay_to: the address that receives the payments.
        network: `"base"`, `"base-sepolia"` or a CAIP-2 id such as `"eip155:84532"`.
        asset: the token, when not the network's USDC (an `Asset`).
        settlement: the backend that verifies and settles payments (for
            example `DevChain().settlement()` or a `LocalSettlement`).
        also_accept: other payees a payment may go to instead, each with its
            own facilitator: `[Solana("<base58 wallet>", network="solana-devnet")]`.
        ledger: a `Ledger`, or a URL (`sqlite:///path`, `postgresql://…`);
            default: an SQLite file in the user's data directory.
        public_url: where the payment page is reachable; links are
            `{public_url}/pay/{paymentRequestId}`.
        max_timeout_seconds: how long a quoted price (and a signed
            authorization) stays valid.
        redemption_lease_seconds: how long one tool run may hold a paid
            request before another call may take it over (a crashed run).
        max_open_requests_per_caller: unpaid, unexpired requests one caller
            may hold; past it a call is refused (`TooManyOpenRequests`). None: no cap.
        max_open_anonymous_requests: unpaid, unexpired requests all callers
            without an identity (stateless HTTP) may hold together. None: no cap.
        expired_retention_seconds: how long expired, never-paid requests stay
            in the ledger before the periodic sweep deletes them (audit lines of
            no request go after the same time).
        result_retention_seconds: how long a consumed request keeps its stored
            tool result (the request, settlement and audit trail stay).
        settlement_grace_seconds: how long a settlement may run before
            reconciliation presumes its process died and finishes it from the chain.
        upkeep_interval_seconds: how often the server's upkeep task runs the sweep
            and reconciliation; both also run when the ledger opens.
        page_port: the loopback port a stdio server serves its payment page
            on when no `public_url` is given (a free port when it is taken).
        metrics: serve Prometheus metrics at `/metrics` on the server's HTTP app.
        metrics_token: the bearer token `/metrics` requires (else `X402_METRICS_TOKEN`);
            setting one also turns `/metrics` on. Without one only loopback may scrape.
        operator_token: serve the read-only operator page at `/operator`, behind this
            token (else `X402_OPERATOR_TOKEN`; no token, no page).
        batch_settlement: also offer x402's `batch-settlement` scheme (a deposit into an
            escrow channel, then one signed voucher per call with no chain transaction);
            `True` or `BatchOptions(...)`. Needs a local settlement backend; the receiver
            authorizer's key comes from `X402_BATCH_AUTHORIZER_KEY` (a public development
            key on the DevChain and anvil). Off by default for now.

    Raises:
        ConfigurationError: for an invalid payee, an unknown network, a network
            without a known USDC and no `asset`, no settlement backend, or a
            metrics or operator token shorter than 16 characters.
    """

    def __init__(
        self,
        pay_to: str,
        network: str | Network = "base-sepolia",
        *,
        asset: Asset | None = None,
        settlement: Settlement | None = None,
        also_accept: Sequence[Solana] = (),
        ledger: Ledger | str | None = None,
        public_url: str | None = None,
        max_timeout_seconds: int = 600,
        redemption_lease_seconds: int = 300,
        max_open_requests_per_caller: int | None = 20,
        max_open_anonymous_requests: int | None = 1000,
        expired_retention_seconds: float = 86_400,
        result_retention_seconds: float = DEFAULT_RESULT_RETENTION_SECONDS,
        settlement_grace_seconds: float = 300,
        upkeep_interval_seconds: float = 60,
        page_port: int = DEFAULT_PAGE_PORT,
        metrics: bool = False,
        metrics_token: str | None = None,
        operator_token: str | None = None,
        batch_settlement: bool | BatchOptions = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        pay_to = parse_address(pay_to, what="pay_to")
        if asset is not None and not isinstance(asset, Asset):
            raise ConfigurationError(f"asset takes Asset(address, name=...), not {shown(repr(asset))}")
        # What this gate made it closes on exit (`aclose`); what it was handed, its caller does.
        self._owns_settlement = settlement is None
        if settlement is None:
            # Base Sepolia: the public testnet facilitator; anywhere else the choice is explicit.
            settlement = default_settlement(resolve_network(network))
        if max_timeout_seconds < 30:
            raise ConfigurationError("max_timeout_seconds must be at least 30 seconds")
        self.network = network_known_to(settlement, resolve_network(network))
        chosen = asset or self.network.usdc
        if chosen is None:
            raise ConfigurationError(
                f"no USDC address is known for {self.network.caip2}; pass asset=Asset(address, name, version)"
            )
        self.asset: Asset = chosen
        pay_to = parse_payee(pay_to, what="pay_to", asset=chosen.address)
        for option in also_accept:
            if not isinstance(option, Solana):
                raise ConfigurationError(f"also_accept takes Solana(...) payees, not {option!r}")
            if option.decimals != chosen.decimals:
                raise ConfigurationError(
                    f"{option!r} has {option.decimals} decimals but {chosen.symbol} has "
                    f"{chosen.decimals}; one price must mean the same amount on both"
                )
        self.also_accept = tuple(also_accept)
        self.pay_to = pay_to
        self.settlement = settlement
        # Whose requests these are: every ledger read and write below is limited to them.
        self.owner = Owner(self.pay_to, self.network.caip2, self.asset.address)
        # No ledger named: this server's own default file, chosen again by name once installed.
        self._default_ledger = ledger is None and not os.environ.get("X402_LEDGER_URL")
        self._owns_ledger = not isinstance(ledger, Ledger)
        self.ledger: Ledger = (
            ledger if isinstance(ledger, Ledger) else open_ledger(ledger or self._default_ledger_url(None))
        )
        self.public_url = public_url
        self.max_timeout_seconds = max_timeout_seconds
        self.clock = clock
        self._opened = False
        self._server: Any = None
        self._open_lock = anyio.Lock()
        self.sweeper = Sweeper(
            self.ledger,
            max_open_per_caller=max_open_requests_per_caller,
            max_open_anonymous=max_open_anonymous_requests,
            retention_seconds=expired_retention_seconds,
            result_retention_seconds=result_retention_seconds,
            owner=self.owner,
        )
        # Spans, metrics and hooks of payment events (x402_mcp/telemetry), shared below.
        self.telemetry = Telemetry(metrics_endpoint=metrics, metrics_token=metrics_token)
        # The read-only operator page at /operator, served only with a token (page/operator.py).
        self.operator_token = checked_operator_token(operator_token)
        self.reconciler = Reconciler(
            self.ledger,
            settlement,
            self.asset,
            grace_seconds=settlement_grace_seconds,
            clock=lambda: self.clock(),
            solana=self.also_accept,
            owner=self.owner,
            telemetry=self.telemetry,
        )
        self._upkeep = Upkeep(
            self.reconciler,
            self.sweeper,
            self.telemetry,
            owner=self.owner,
            interval_seconds=upkeep_interval_seconds,
            clock=lambda: self.clock(),
        )
        self._runs = 0
        batch = batch_scheme(
            batch_settlement,
            network=self.network,
            asset=self.asset,
            ledger=self.ledger,
            settlement=settlement,
            clock=lambda: self.clock(),
        )
        self.collector = Collector(
            self.ledger,
            settlement,
            self.network,
            self.asset,
            lambda: self.clock(),
            solana=self.also_accept,
            also=() if batch is None else (batch,),
            owner=self.owner,
            telemetry=self.telemetry,
        )
        self.redemption = Redemption(self.collector, lease_seconds=redemption_lease_seconds)
        self.driver = Driver(self, self.redemption)
        # Set to the embedded DevChain to offer its demo wallet on the payment page.
        self.demo_chain: Any = None
        self.link = PageLink(self, page_port)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Configure from `X402_*` environment variables (what the sample servers use).

        The variables are listed in `x402_mcp.gate.config.settings_from_env` and in README:
        `X402_SETTLEMENT` (`devchain` by default, or `local`), `X402_PAY_TO`,
        `X402_NETWORK`, the ledger, page and Solana settings.

        Raises:
            ConfigurationError: a missing or invalid setting, named.
        """
        settings, demo_chain = settings_from_env(os.environ if environ is None else environ)
        payments = cls(**settings)
        payments.demo_chain = demo_chain
        payments._owns_settlement = True  # made from the environment, for this gate alone
        return payments

    @property
    def server(self) -> Any:
        """The server these payments are installed on (None before `install`)."""
        return self._server

    @server.setter
    def server(self, server: Any) -> None:
        self._server = server
        if server is not None:
            name = getattr(server, "name", None)
            self.use_default_ledger_of(name if isinstance(name, str) else None)

    def use_default_ledger_of(self, server_name: str | None) -> None:
        """Keep the ledger in the default file of the server called `server_name` (with this
        payee, network and asset), when no ledger was named and none is open yet.

        Installing on a server does this with its name; `x402-mcp page --server NAME`, which
        serves the page of a server running elsewhere, does it with that server's name.
        """
        if self._default_ledger and not self._opened:
            self._use_ledger(open_ledger(self._default_ledger_url(server_name)))

    def _default_ledger_url(self, server_name: str | None) -> str:
        return default_ledger_url(
            server_name, pay_to=self.pay_to, network=self.network.caip2, asset=self.asset.address
        )

    def _use_ledger(self, ledger: Ledger) -> None:
        """Put `ledger` in place of the (unopened) one everything was built with."""
        self.ledger = ledger
        self.sweeper.ledger = ledger
        self.reconciler.ledger = ledger
        self.collector.ledger = ledger

    def settings(self) -> dict[str, Any]:
        return {"network": self.network.caip2, "asset": self.asset.address, "payTo": self.pay_to}

    @property
    def offer(self) -> Offer:
        public_url = self.public_url or self.link.url or DEFAULT_PUBLIC_URL
        others = tuple((option.network.caip2, option.mint, option.pay_to) for option in self.also_accept)
        return Offer(self.network, self.asset, self.pay_to, public_url, others)

    async def open(self) -> None:
        """Open the ledger and run upkeep once (a server's lifespan does this at start; call it
        to fail fast, or where no lifespan runs)."""
        await self.open_ledger()
        await self.upkeep(force=True)

    async def open_ledger(self) -> None:
        """Open the ledger and check it can be written (at the server's start, and on first use).

        The one way in for the gate and its page alike: two first uses at once open it once.

        Raises:
            LedgerError: naming the file and what to do.
        """
        async with self._open_lock:
            if not self._opened:
                if self._default_ledger:
                    warn_of_legacy_ledger(self.ledger)
                await open_checked(self.ledger)
                self._opened = True

    async def upkeep(self, *, force: bool = False) -> None:
        """Reconcile interrupted settlements and sweep expired requests, if due (or `force`).

        Failures are logged, never raised. It runs in `running()`, beside the calls.
        """
        await self._upkeep.run(self.ledger, force=force)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The gate while a server runs: the ledger open, upkeep as a task, the page's side
        port hosted; on the last exit, what the gate made is closed (`aclose`).

        The frameworks' lifespans enter it, and `async with payments:`; entries may nest.

        Raises:
            LedgerError: the ledger cannot be opened (the server does not start).
        """
        self._runs += 1
        try:
            await self.open()
            async with self.link.lifespan(), anyio.create_task_group() as group:
                group.start_soon(self._upkeep.forever, lambda: self.ledger)
                try:
                    yield
                finally:
                    group.cancel_scope.cancel()
        finally:
            self._runs -= 1
            if self._runs == 0:
                with anyio.CancelScope(shield=True):
                    await self.aclose()

    async def aclose(self) -> None:
        """Close what this gate made: a ledger it opened from a URL (or its default file), and
        a settlement backend's client it made; a ledger or backend handed to it is left open."""
        if self._owns_ledger:
            async with self._open_lock:
                if self._opened:
                    await self.ledger.close()
                    self._opened = False
        closing = getattr(self.settlement, "aclose", None) if self._owns_settlement else None
        if closing is not None:
            await closing()

    def advertise(self, tool: dict[str, Any], spec: PaidTool) -> None:
        """Write the price and the x402 offer into one listed tool (its `tools/list` entry)."""
        try:
            describe_paid_tool(tool, spec, self.offer)
        except InvalidPrice:
            # Listed without its price: a call of it answers why it cannot be priced.
            logger.exception("could not advertise the price of paid tool %r", tool.get("name"))

    # -- the gate -----------------------------------------------------------------------------

    async def handle(self, tool_call: ToolCall) -> CallToolResult:
        """Answer one call of a paid tool: run it paid for, or say what it costs and why not."""
        # The framework's span of this call gets the payment's outcome (telemetry/tracing.py).
        with self.telemetry.call():
            # Only the ledger: upkeep runs beside the calls (`running`), never inside one.
            return await self.driver.handle(tool_call, opening=self.open_ledger)

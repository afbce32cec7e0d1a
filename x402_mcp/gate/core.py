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
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Self

import anyio
from mcp_types import CallToolResult, TextContent
from pydantic import ValidationError

from ..core.addresses import parse_address, parse_payee
from ..core.challenge import (
    META_PAYMENT,
    META_REQUEST_ID,
    REQUEST_ID_ARGUMENT,
    Offer,
    challenge_result,
    describe_paid_tool,
    failure_result,
    payment_required,
    refusal_result,
    requirements_for,
)
from ..core.ids import new_request_id
from ..core.inbound import argument_problems, explicit_request_id, named_request_id, payment_from
from ..core.lifecycle import Event, State
from ..core.links import DEFAULT_PAGE_PORT
from ..core.money import format_usd
from ..core.networks import Asset, Network, resolve_network
from ..core.pricing import PaidTool, SettleOrder
from ..core.text import shown
from ..core.wire import PaymentPayloadV1, PaymentRequirements, ReceivedPayment, parse_payment_payload
from ..errors import (
    ConfigurationError,
    InvalidPrice,
    LedgerError,
    PaymentError,
    PaymentExpired,
    PaymentMismatch,
    SettlementError,
    TooManyOpenRequests,
)
from ..errors import Refused as _Refused
from ..ledger import open_ledger
from ..ledger._open import open_checked
from ..ledger.base import Claim, Ledger, Owner, PaymentRequest
from ..ledger.location import warn_of_legacy_ledger
from ..page.operator import operator_token as checked_operator_token
from ..page.serving import PageLink
from ..schemes.exact.matching import match_payment
from ..schemes.exact.solana import Solana
from ..settlement.base import Settlement
from ..settlement.facilitator import default_settlement
from ..telemetry import Telemetry
from .call import ToolCall
from .collect import Collector, check_payable, unknown_request
from .collect import underpaid as _underpaid
from .config import default_ledger_url, network_known_to, settings_from_env
from .guard import gate_passed
from .reconcile import Reconciler
from .redemption import Hold, Redemption
from .sweeper import DEFAULT_RESULT_RETENTION_SECONDS, Sweeper

logger = logging.getLogger("x402_mcp")

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8402"
# How long an unpaid call waits for a client to answer the URL elicitation of the link.
# The answer changes nothing (the challenge follows either way), and clients give up on a
# call after about 60 s (the TypeScript SDK's default), so the wait stays short.
ELICITATION_WAIT_SECONDS = 5.0
CRASH_MESSAGE = (
    "The payment could not be processed because the {part} failed. The tool did not run. "
    "If money moved, the payment is recorded and will be honoured (payment request {request_id})."
)
RAN_BUT_UNCONFIRMED = (
    "The tool ran, but its output is withheld until the payment is confirmed: the {part} failed "
    "while settling it. Your signed payment is recorded with payment request {request_id} and is "
    "reconciled from the chain within minutes. If money moved, the request becomes paid: then call "
    '{tool} again with payment_request_id="{request_id}" (or the same payment) and it runs for you '
    "without a second charge. If no money moved, nothing was charged and the request can be paid again."
)
RAN_BUT_UNRECORDED = (
    "The tool ran, but its output is withheld: the {part} failed while recording the run. "
    "The payment stays with payment request {request_id} and is not charged again: call {tool} "
    'again with payment_request_id="{request_id}" in a few minutes and it runs for you.'
)
FAILED_BUT_PAID = (
    "{tool} failed after its payment settled, so the payment is kept for it: call {tool} again "
    'with payment_request_id="{request_id}" and it runs for you without a second charge.'
)
FAILED_UNCONFIRMED = (
    "{tool} failed, and the {part} failed while settling its payment, which was sent while the "
    "tool ran. Your signed payment is recorded with payment request {request_id} and is reconciled "
    "from the chain within minutes. If money moved, the request becomes paid: then call {tool} "
    'again with payment_request_id="{request_id}" and it runs for you without a second charge. '
    "If no money moved, nothing was charged and the request can be paid again."
)
GET_A_PRICE = (
    "To get a price, call {tool} again without a payment "
    '(no _meta["x402/payment"] and no payment_request_id).'
)
REFUSAL_TEXT_LIMIT = 400
"""Characters of a refusal's reason echoed to the caller and kept in the audit line."""


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
        upkeep_interval_seconds: how often (at most) a call also runs the sweep
            and reconciliation; both also run when the ledger opens.
        page_port: the loopback port a stdio server serves its payment page
            on when no `public_url` is given (a free port when it is taken).
        metrics: serve Prometheus metrics at `/metrics` on the server's HTTP app.
        metrics_token: the bearer token `/metrics` requires (else `X402_METRICS_TOKEN`);
            setting one also turns `/metrics` on. Without one only loopback may scrape.
        operator_token: serve the read-only operator page at `/operator`, behind this
            token (else `X402_OPERATOR_TOKEN`; no token, no page).

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
        clock: Callable[[], float] = time.time,
    ) -> None:
        pay_to = parse_address(pay_to, what="pay_to")
        if asset is not None and not isinstance(asset, Asset):
            raise ConfigurationError(f"asset takes Asset(address, name=...), not {shown(repr(asset))}")
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
        self.upkeep_interval_seconds = upkeep_interval_seconds
        self._upkeep_due = 0.0
        self._upkeep_lock = anyio.Lock()
        self.collector = Collector(
            self.ledger,
            settlement,
            self.network,
            self.asset,
            lambda: self.clock(),
            solana=self.also_accept,
            owner=self.owner,
            telemetry=self.telemetry,
        )
        self.redemption = Redemption(self.collector, lease_seconds=redemption_lease_seconds)
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
        """Open the ledger and reconcile it (done on first use; call it to fail fast at start-up)."""
        await self.open_ledger()
        await self.upkeep()

    async def open_ledger(self) -> None:
        """Open the ledger and check it can be written (at the server's start, and on first use).

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

        Failures are logged, never raised: upkeep must not fail the call that ran it.
        """
        if (not force and self.clock() < self._upkeep_due) or self._upkeep_lock.locked():
            return
        async with self._upkeep_lock:
            self._upkeep_due = self.clock() + self.upkeep_interval_seconds
            try:
                await self.reconciler.run()
                swept = await self.sweeper.sweep(now=self.clock())
                self.telemetry.swept(swept.expired, self.network.caip2)
                await self.telemetry.refresh_open(self.ledger, self.owner, self.clock())
            except (LedgerError, SettlementError):
                logger.exception("ledger upkeep (reconciliation, sweep) failed; it will be retried")

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
            return await self._handle(tool_call)

    async def _handle(self, tool_call: ToolCall) -> CallToolResult:
        call = _Call(tool_call)
        arguments = tool_call.arguments
        # Ours, not the tool's: its function never sees it (it is not in its signature).
        id_argument = arguments.pop(REQUEST_ID_ARGUMENT, None)
        meta = tool_call.meta
        price = self._price(call, arguments)
        if isinstance(price, CallToolResult):
            return price
        try:
            await self.open()
        except LedgerError:
            logger.exception("the payment ledger could not be opened")
            return failure_result(
                "The payment ledger is unavailable, so this paid tool cannot run right now."
            )
        try:
            explicit_id = explicit_request_id(id_argument, meta.get(META_REQUEST_ID))
            if META_PAYMENT in meta:
                return await self._pay(call, price, meta[META_PAYMENT], explicit_id)
            if explicit_id is not None:
                return await self._redeem_by_id(call, price, explicit_id)
            if call.caller is not None:
                # One write, no read before: a paid request that does not cover this (dearer)
                # call claims nothing and leaves it to be quoted.
                claim = await self.redemption.take_redeemable(tool=call.tool, caller=call.caller, price=price)
                if claim is not None:
                    call.request_id = claim.request.id
                    return await self.redemption.run_claimed(claim, lambda: self._invoke(call))
            await self._link_page(tool_call.http_request)
            request = await self._issue(call, price)
            await self._offer_link(tool_call, request)
            return await self._challenge(request)
        except TooManyOpenRequests as capped:
            logger.info("refused to quote %r: %s", call.tool, capped)
            self.telemetry.refused(call.tool, capped.reason, None, self.clock())
            return refusal_result(str(capped))
        except _Refused as refused:
            return await self._refuse(call, price, refused.error, refused.request)
        except PaymentError as error:
            return await self._refuse(call, price, error, None)
        except (SettlementError, LedgerError) as crash:
            part = _failed_part(crash)
            logger.error("paid call of %r failed in the %s", call.tool, part, exc_info=crash)
            message = RAN_BUT_UNRECORDED if call.ran else CRASH_MESSAGE
            return failure_result(
                message.format(part=part, request_id=call.request_id or "none", tool=call.tool)
            )

    def _price(self, call: _Call, arguments: dict[str, Any]) -> int | CallToolResult:
        """This call's price in atomic units, or the tool error that says why it has none.

        The arguments are checked against the tool's input schema first, so nothing
        is quoted for a call that could not run: a caller who sent bad arguments is
        told which (they can fix it); a price function that fails on valid arguments
        is the operator's bug, logged with its cause.
        """
        try:
            validated = call.source.validate(arguments)
        except ValidationError as invalid:
            logger.info("refused to price %r: its arguments do not fit its input schema", call.tool)
            return failure_result(
                f"The arguments of {call.tool} are invalid, so it was not priced and did not run "
                f"(nothing was charged): {argument_problems(invalid)}."
            )
        except Exception:  # a custom validator or default factory that crashes is the tool's bug
            logger.exception("the argument model of paid tool %r failed", call.tool)
            return failure_result(
                f"The arguments of {call.tool} could not be checked, so it did not run; nothing was charged."
            )
        try:
            return call.spec.atomic_price(validated, self.asset.decimals)
        except InvalidPrice as broken:
            logger.error("could not price a call of paid tool %r: %s", call.tool, broken, exc_info=broken)
            return failure_result(
                f"This tool's price could not be computed ({broken}), so it did not run and nothing "
                "was charged. The server's operator can find the cause in its log."
            )

    async def _link_page(self, http_request: Any) -> None:
        try:
            await self.link.ensure(http_request)
        except (OSError, TimeoutError):
            # The challenge still works without a page (agents pay in _meta); say why in the log.
            logger.exception("could not start the payment page; links point to %s", self.offer.public_url)

    async def _offer_link(self, call: ToolCall, request: PaymentRequest) -> None:
        """Offer the hosted URL by URL-mode elicitation where the door and the client support it.

        Progressive enhancement only: the tool error that follows stays the baseline,
        and arrives after at most `ELICITATION_WAIT_SECONDS` however late the client answers.
        """
        if call.offer_link is None:
            return
        price = format_usd(request.price, self.asset.decimals)
        with anyio.move_on_after(ELICITATION_WAIT_SECONDS):
            try:
                await call.offer_link(
                    f"Pay {price} for {request.description or request.tool}",
                    self.offer.hosted_url(request.id),
                    request.id,
                )
            except Exception:  # any failure of the optional offer leaves the baseline intact
                logger.info("the client did not take the payment link by elicitation", exc_info=True)

    async def _issue(self, call: _Call, price: int) -> PaymentRequest:
        return await self._store(call, self._quote(call, price))

    def _quote(self, call: _Call, price: int) -> PaymentRequest:
        """A new payment request for this call (not stored yet)."""
        now = self.clock()
        return PaymentRequest(
            id=new_request_id(),
            tool=call.tool,
            price=price,
            asset=self.asset.address,
            network=self.network.caip2,
            pay_to=self.pay_to,
            caller=call.caller,
            created_at=now,
            expires_at=now + self.max_timeout_seconds,
            max_timeout_seconds=self.max_timeout_seconds,
            description=call.spec.description or call.tool,
        )

    async def _store(self, call: _Call, request: PaymentRequest) -> PaymentRequest:
        # Counted against the caller's cap and stored in one ledger transaction.
        with self.telemetry.ledger_step("issue", request.id):
            await self.sweeper.issue(request)
        call.request_id = request.id
        self.telemetry.quoted(request)
        return request

    async def _challenge(self, request: PaymentRequest, error: str | None = None) -> CallToolResult:
        accepts = await self.collector.accepts(request)
        result = challenge_result(request, self.offer, now=self.clock(), error=error, accepts=accepts)
        self.telemetry.challenged(request)  # a challenge answered again is one too (not an error)
        return result

    async def _refuse(
        self, call: _Call, price: int, error: PaymentError, request: PaymentRequest | None
    ) -> CallToolResult:
        """Answer a refused payment or request id, changing nothing but one bounded audit line.

        When the refusal concerns a request this call can still pay, its challenge is
        answered again; otherwise a tool error says what was wrong and how to get a
        price. Either way nothing is quoted: a stream of bad payments must neither grow
        the ledger nor fill the caller's quota of open requests.
        """
        now = self.clock()
        message = shown(str(error), REFUSAL_TEXT_LIMIT)
        reason = shown(error.reason, 60)
        try:
            await self.ledger.audit(
                request.id if request else None, "refused", f"{call.tool}: {reason}: {message}", now=now
            )
        except LedgerError:
            logger.exception("could not write the audit line of a refused payment for %r", call.tool)
        logger.info("refused a payment for %r: %s (%s)", call.tool, message, reason)
        self.telemetry.refused(call.tool, reason, request, now)
        if request is not None and self._payable_by(call, price, request, now):
            # The same request can still be paid: point at it again, changing nothing.
            try:
                return await self._challenge(request, message)
            except (SettlementError, LedgerError):
                logger.exception("could not restate the challenge of %s", request.id)
        return refusal_result(
            f"The payment was not accepted: {message}\n{GET_A_PRICE.format(tool=call.tool)}"
        )

    def _payable_by(self, call: _Call, price: int, request: PaymentRequest, now: float) -> bool:
        """Whether this call could still pay `request`: the same two checks a payment meets."""
        try:
            self._check_covers(call, price, request)
            check_payable(request, price, now, self.asset.decimals)
        except PaymentError:
            return False
        return True

    # -- paying with _meta["x402/payment"] ----------------------------------------------------

    async def _pay(self, call: _Call, price: int, raw: object, explicit_id: str | None) -> CallToolResult:
        payload = payment_from(raw)
        if isinstance(payload, PaymentPayloadV1):
            if explicit_id is not None:
                raise PaymentMismatch(
                    "an x402 v1 payment pays for a fresh quote of the call it comes with; "
                    f"leave out {REQUEST_ID_ARGUMENT}"
                )
            return await self._pay_fresh_quote(call, price, payload)
        request_id = named_request_id(payload)
        if explicit_id is not None and explicit_id != request_id:
            raise PaymentMismatch(
                f"the payment pays payment request {shown(request_id)}, "
                f"but the call names {shown(explicit_id)}"
            )
        request = await self.collector.get(request_id)
        if request is None:
            raise unknown_request(request_id)
        call.request_id = request.id
        self._check_covers(call, price, request)
        if request.state in (State.PAID, State.REDEEMING) and _same_payment(request.payload, payload):
            # The tool failed after this very payment settled: it may run again.
            return await self._run_paid(call, price, request)
        return await self._settle_and_run(call, price, request, payload)

    async def _pay_fresh_quote(self, call: _Call, price: int, payload: PaymentPayloadV1) -> CallToolResult:
        """An x402 v1 payment names no request: it pays a fresh quote of this call, at its price.

        The quote is stored only once the payment fits it (payee, amount, validity
        window, signature), and withdrawn when the payment is refused after all, so
        a refused payment leaves no open quote behind.
        """
        quote = self._quote(call, price)
        match_payment(payload, requirements_for(quote, self.asset), self.network, now=self.clock())
        await self._store(call, quote)
        try:
            return await self._settle_and_run(call, price, quote, payload)
        except (_Refused, PaymentError) as refused:
            error = refused.error if isinstance(refused, _Refused) else refused
            with anyio.CancelScope(shield=True):
                await self._withdraw(quote)
            raise _Refused(error, None) from None

    async def _withdraw(self, quote: PaymentRequest) -> None:
        # A quote no longer issued has moved on (settling, paid): it is not a bare quote any more.
        with contextlib.suppress(_Refused):
            await self._transition(quote, Event.EXPIRE)

    async def _settle_and_run(
        self, call: _Call, price: int, request: PaymentRequest, payload: ReceivedPayment
    ) -> CallToolResult:
        requirements = await self.collector.requirements(request, payload)
        request = await self.collector.begin(
            request, payload, requirements, price=price, decimals=self.asset.decimals
        )
        if call.spec.settle is SettleOrder.AFTER:
            if call.spec.overlap:
                return await self._verify_run_while_settling(call, request, payload, requirements)
            return await self._verify_run_settle(call, request, payload, requirements)
        await self.collector.verify(request, payload, requirements)
        # Recorded already claimed for this run: one write, and no other call can redeem it first.
        # Tool and price were checked before `begin` (`_pay`).
        claimed = await self.collector.settle(
            request, payload, requirements, claim=self.redemption.settling_claim()
        )
        return await self.redemption.run_claimed(
            Claim(claimed, requirements.network), lambda: self._invoke(call)
        )

    async def _verify_run_settle(
        self,
        call: _Call,
        request: PaymentRequest,
        payload: ReceivedPayment,
        requirements: PaymentRequirements,
    ) -> CallToolResult:
        """The x402 spec's order: verify, run, settle on success, withhold output otherwise."""
        await self.collector.verify(request, payload, requirements)
        try:
            # Its settling lease is renewed while it runs, so reconciliation leaves it alone.
            result = await self.redemption.holding(request, lambda: self._invoke(call))
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.collector.release(request, payload, requirements)
            raise
        if not isinstance(result, CallToolResult) or result.is_error:
            await self.collector.release(request, payload, requirements)
            return result
        try:
            claimed = await self.collector.settle(
                request, payload, requirements, claim=self.redemption.settling_claim()
            )
        except _Refused as refused:
            return await self._withheld(call, request, refused)
        except (SettlementError, LedgerError) as crash:
            return self._unconfirmed(call, request, crash)
        # Tool and price were checked before `begin` (`_pay`); what ran is what was paid for.
        return await self.redemption.finish(claimed, result, network=requirements.network)

    async def _verify_run_while_settling(
        self,
        call: _Call,
        request: PaymentRequest,
        payload: ReceivedPayment,
        requirements: PaymentRequirements,
    ) -> CallToolResult:
        """`settle="after", overlap=True`: verify, then settle while the tool runs.

        The settlement is recorded under this run's claim, so nobody else can redeem the
        request mid-run; it is shielded, so a cancelled call still records what the chain
        did. Output is released only once both the tool succeeded and the payment settled.
        A tool that fails after its payment settled leaves the request `paid` for a retry.
        """
        await self.collector.verify(request, payload, requirements)
        hold = Hold(request)
        settled: list[PaymentRequest] = []
        settle_failure: list[Exception] = []

        async def settle() -> None:
            with anyio.CancelScope(shield=True):
                try:
                    claimed = await self.collector.settle(
                        request, payload, requirements, claim=self.redemption.settling_claim()
                    )
                except Exception as failure:  # Refused, or a crash: judged once the tool is done
                    settle_failure.append(failure)
                    return
                hold.request = claimed
                settled.append(claimed)

        result: object = None
        failure: Exception | None = None
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(settle)
                try:
                    result = await self.redemption.holding(hold, lambda: self._invoke(call))
                except Exception as exc:
                    failure = exc
        except BaseException:
            # Cancelled: the settlement finished (shielded). A settled payment is kept, paid.
            if settled:
                with anyio.CancelScope(shield=True):
                    await self.redemption.release(settled[0])
            raise
        succeeded = failure is None and isinstance(result, CallToolResult) and not result.is_error
        if settled:
            claimed = settled[0]
            if succeeded:
                assert isinstance(result, CallToolResult)
                return await self.redemption.finish(claimed, result, network=requirements.network)
            # The payer was charged and the tool failed: the payment stays redeemable, once.
            await self.redemption.release(claimed)
            logger.warning(
                "%r failed after %s settled; it stays paid for a retry",
                call.tool,
                claimed.id,
                exc_info=failure,
            )
            note = FAILED_BUT_PAID.format(tool=call.tool, request_id=claimed.id)
            return _with_note(result if failure is None else _raised(failure), note)
        error = settle_failure[0]
        if isinstance(error, _Refused):
            # Nothing moved; the collector put the request back to `issued`.
            if failure is not None:
                raise failure
            if not succeeded:
                return result  # type: ignore[return-value]
            return await self._withheld(call, request, error)
        if not isinstance(error, (SettlementError, LedgerError)):
            raise error
        if succeeded:
            return self._unconfirmed(call, request, error)
        # The request stays `settling` with its payload, for reconciliation to ask the chain.
        part = _failed_part(error)
        logger.error(
            "settling %s failed in the %s while %r failed", request.id, part, call.tool, exc_info=error
        )
        note = FAILED_UNCONFIRMED.format(tool=call.tool, part=part, request_id=request.id)
        return _with_note(result if failure is None else _raised(failure), note)

    async def _withheld(self, call: _Call, request: PaymentRequest, refused: _Refused) -> CallToolResult:
        """The answer when settlement was refused after the tool ran: output withheld, pay again."""
        logger.warning("settlement failed after %r ran; its output is withheld", call.tool)
        reason = shown(str(refused.error), REFUSAL_TEXT_LIMIT)
        message = f"Settlement failed, so the result is withheld: {reason}"
        accepts = await self.collector.accepts(request)
        return refusal_result(message, payment_required(request, self.asset, error=message, accepts=accepts))

    def _unconfirmed(
        self, call: _Call, request: PaymentRequest, crash: SettlementError | LedgerError
    ) -> CallToolResult:
        """The tool ran, but a backend failed while settling: the output waits for the chain.

        The request stays `settling` with the signed payload: only the chain can say
        whether money moved, and reconciliation asks it.
        """
        part = _failed_part(crash)
        logger.error(
            "settling %s failed in the %s after %r ran; its output is withheld",
            request.id,
            part,
            call.tool,
            exc_info=crash,
        )
        return failure_result(RAN_BUT_UNCONFIRMED.format(part=part, request_id=request.id, tool=call.tool))

    # -- redeeming a paid request -------------------------------------------------------------

    async def _redeem_by_id(self, call: _Call, price: int, request_id: str) -> CallToolResult:
        # The usual case, a paid request for this tool, in one write; anything else the slow way.
        claim = await self.redemption.take(request_id, tool=call.tool, price=price)
        if claim is not None:
            call.request_id = claim.request.id
            return await self.redemption.run_claimed(claim, lambda: self._invoke(call))
        request = await self.collector.get(request_id)
        if request is None:
            raise unknown_request(request_id)
        call.request_id = request.id
        self._check_covers(call, price, request)
        if request.state is State.ISSUED:
            if request.is_expired(self.clock()):
                raise PaymentExpired(f"payment request {shown(request_id)} expired unpaid")
            return await self._challenge(request, "this payment request is not paid yet")
        return await self._run_paid(call, price, request, claimable=False)

    def _check_covers(self, call: _Call, price: int, request: PaymentRequest) -> None:
        """Refuse `request` for this call unless it was quoted for this tool, at this call's
        price or more.

        Every path that pays or redeems a request comes through here (a payment that
        names it, an explicit id, the same payment again after a failed run, a caller's
        plain retry), so none lets a request bought for one tool, or for a cheap call,
        pay for another.

        Raises:
            PaymentMismatch: naming the request, its tool or its price, and this call's.
        """
        if request.tool != call.tool:
            raise PaymentMismatch(
                f"payment request {request.id} is for tool {request.tool!r}, not {call.tool!r}"
            )
        if request.price < price:
            raise _underpaid(request, price, self.asset.decimals)

    async def _run_paid(
        self, call: _Call, price: int, request: PaymentRequest, *, claimable: bool = True
    ) -> CallToolResult:
        """Run the tool once for paid `request`: the one door to `Redemption.run`.

        Claimed in one write when it can be (`claimable`: not known to be unclaimable
        already); otherwise by the `claim` transition, whose refusal says why.
        """
        self._check_covers(call, price, request)
        call.request_id = request.id
        if claimable:
            claim = await self.redemption.take(request.id, tool=call.tool, price=price)
            if claim is not None:
                return await self.redemption.run_claimed(claim, lambda: self._invoke(call))
        return await self.redemption.run(request, lambda: self._invoke(call))

    @staticmethod
    async def _invoke(call: _Call) -> CallToolResult:
        call.ran = True
        # The one place a paid tool's body runs: its @paid guard lets it run only in here.
        with gate_passed(call.spec):
            return await call.source.run()

    async def _transition(self, request: PaymentRequest, event: Event, **changes: Any) -> PaymentRequest:
        return await self.collector.transition(request, event, **changes)


class _Call:
    """The gate's working state for one `ToolCall` of a paid tool."""

    __slots__ = ("caller", "ran", "request_id", "source", "spec", "tool")

    def __init__(self, source: ToolCall) -> None:
        self.source = source
        self.tool = source.tool
        self.spec = source.spec
        self.caller = source.caller
        self.request_id: str | None = None
        self.ran = False
        """Whether the tool body was started: a crash after that must not say it did not run."""


def _failed_part(crash: SettlementError | LedgerError) -> str:
    """Which backend a crash came from, as the caller is told."""
    return "settlement backend" if isinstance(crash, SettlementError) else "payment ledger"


def _raised(failure: Exception) -> CallToolResult:
    """A tool's exception as the error result its framework would answer.

    A `ToolError` (both frameworks name theirs so) carries words meant for the
    caller; of any other exception only its type is said, as a masking server would.
    """
    if type(failure).__name__ == "ToolError":
        return failure_result(shown(str(failure), REFUSAL_TEXT_LIMIT))
    return failure_result(f"The tool raised {type(failure).__name__}.")


def _with_note(result: object, note: str) -> CallToolResult:
    """A failed tool's error result, with `note` (what became of the payment) appended."""
    if not isinstance(result, CallToolResult):
        return failure_result(note)
    return result.model_copy(update={"content": [*result.content, TextContent(type="text", text=note)]})


def _same_payment(stored_payload: str | None, payload: ReceivedPayment) -> bool:
    """Whether `payload` is the very payment stored with a request (same signed authorization
    or transaction), as opposed to a new one."""
    if stored_payload is None:
        return False
    try:
        stored = parse_payment_payload(stored_payload)
    except PaymentError:
        return False
    return type(stored) is type(payload) and stored.payload == payload.payload

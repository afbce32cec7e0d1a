"""The hosted URL `{public_url}/pay/{paymentRequestId}`, for people and for machines.

A browser (`Accept: text/html`) gets the payment page; an x402 HTTP client
(anything else, or any request carrying `PAYMENT-SIGNATURE` / `X-PAYMENT`) gets
the x402 v2 resource behaviour: `402` with `PAYMENT-REQUIRED`, then `200` with
`PAYMENT-RESPONSE` once its payment settles. Both pay through the same
`Collector` as the MCP gate, so the request ends up `paid` in the shared ledger
and the next call of the tool redeems it.

These routes are public (MCP custom routes are never authenticated): they
reveal nothing beyond the request the unguessable id names.

Who may call what, from where:
- The x402 resource (`GET`/`POST /pay/{id}` answered as JSON) is open to every
  origin: a browser x402 client on any site must read `PAYMENT-REQUIRED` and
  send `PAYMENT-SIGNATURE`. Nothing it does relies on the caller's cookies or
  origin; the signed payment alone moves the money.
- The page's own actions (`/authorization`, `/demo`, and the wallet's JSON
  `POST /pay/{id}`) are not: they answer no preflight, need
  `Content-Type: application/json` (which no cross-site form can send), and
  refuse a browser request whose `Sec-Fetch-Site` (or, lacking it, `Origin`)
  says it came from another site. The demo wallet spends the server's own
  funds at one click, so another site must never be able to press it; the
  others are the page's private API and have no reason to be reachable.
- The page's HTML carries no CORS headers either: no other site has a reason
  to read it, and `frame-ancestors 'none'` keeps it from being framed.
- Every response of the page's app, Starlette's own 404/405/500 included,
  carries `SECURITY_HEADERS` (`SecureHeaders` wraps the whole app).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

from eth_utils.address import is_address, to_checksum_address
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from ..core.challenge import Offer
from ..core.evm import new_nonce, requirement_typed_data
from ..core.ids import is_request_id
from ..core.text import shown
from ..core.wire import ExactAuthorization, ExactPayload, PaymentPayload, ResourceInfo
from ..errors import LedgerError, Refused, SettlementError
from ..ledger.base import PaymentRequest
from ..schemes.exact.evm import requirements_for
from .ports import DemoSigner, PageCollector
from .render import STATIC_FILES, asset_text, page_state, render_not_found, render_page
from .web import (
    CORS_HEADERS,
    CRASH_MESSAGE,
    MAX_BODY_BYTES,
    MAX_ERROR_CHARS,
    NO_SUCH_REQUEST,
    PAYMENT_HEADERS,
    PREFLIGHT_HEADERS,
    SECURITY_HEADERS,
    PageError,
    SecureHeaders,
    accepts_html,
    html_response,
    json_body,
    json_response,
    json_value,
    payment_header,
    plain_response,
    refusal,
    relative_root,
    require_own_page,
    wants_page,
)
from .x402_resource import X402Resource, receipt

__all__ = [
    "MAX_BODY_BYTES",
    "PAYMENT_HEADERS",
    "SECURITY_HEADERS",
    "PageError",
    "PaymentPage",
    "SecureHeaders",
]

logger = logging.getLogger("x402_mcp.page")


class PaymentPage:
    """The Starlette routes of the hosted payment page and x402 resource.

    Args:
        collector: verifies, settles and records payments (ledger + settlement).
        offer: a function returning the current `Offer` (network, asset, payee,
            public URL), read per request so a link learned late is honoured.
        link_base: the base of the hosted URL for a request with this ASGI
            scope (the HTTP 402's `resource.url`); by default the offer's.
        server_name: the MCP server's name, shown to the payer.
        demo_wallet: only on the embedded DevChain: offers "Pay with the demo wallet".
        open_ledger: opens the ledger on first use (the gate's `open_ledger`); default: its own.
    """

    def __init__(
        self,
        collector: PageCollector,
        offer: Callable[[], Offer],
        *,
        link_base: Callable[[Mapping[str, Any]], str] | None = None,
        server_name: str = "MCP server",
        demo_wallet: DemoSigner | None = None,
        open_ledger: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.collector = collector
        # The gate's own opening, under its lock: a page and a call that both come first open
        # the ledger once (a second open would leak its first connection pool).
        self.open_ledger = open_ledger or collector.ledger.open
        self.offer = offer
        self.link_base = link_base or (lambda scope: self.offer().public_url)
        self.server_name = server_name
        self.demo_wallet = demo_wallet
        self.x402 = X402Resource(collector, offer)

    @property
    def ledger(self) -> Any:
        return self.collector.ledger

    def routes(self) -> list[Route]:
        return [
            Route("/pay/_static/{name}", self.static, methods=["GET"]),
            Route("/pay/{request_id}", self.resource, methods=["GET", "POST", "OPTIONS"]),
            Route("/pay/{request_id}/", self.without_slash, methods=["GET", "HEAD"]),
            Route("/pay/{request_id}/authorization", self.authorization, methods=["POST"]),
            Route("/pay/{request_id}/demo", self.demo, methods=["POST"]),
        ]

    def app(self) -> ASGIApp:
        """The page as an ASGI app of its own: a side port, a separate process, or mounted at /pay."""
        handlers = {HTTPException: self._http_error, Exception: self._crash}
        app = Starlette(routes=self.routes(), exception_handlers=handlers)
        # Starlette's own slash redirect builds an absolute Location from the request's Host
        # header, which the caller writes: `without_slash` redirects relatively instead.
        app.router.redirect_slashes = False
        return SecureHeaders(app)

    # -- handlers --------------------------------------------------------------------------

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        media_type = STATIC_FILES.get(name)
        if media_type is None:
            return plain_response(404, "Not found.")
        return Response(asset_text(name), media_type=media_type)

    async def resource(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=PREFLIGHT_HEADERS)
        if wants_page(request):
            response = await self._guarded(request, self._page)
        else:
            response = await self._guarded(request, self._x402_resource)
            response.headers.update(CORS_HEADERS)
        response.headers["Vary"] = "Accept"  # one URL, two representations
        return response

    async def without_slash(self, request: Request) -> Response:
        """`/pay/{id}/` (a link with a slash added) to `/pay/{id}`, by a relative Location only:
        never built from `Host`, so no request can make the page send a payer elsewhere."""
        request_id = request.path_params["request_id"]
        if not is_request_id(request_id):
            raise HTTPException(404)
        return Response(status_code=308, headers={"Location": f"../{quote(request_id, safe='')}"})

    async def authorization(self, request: Request) -> Response:
        return await self._guarded(request, self._authorization)

    async def demo(self, request: Request) -> Response:
        return await self._guarded(request, self._demo)

    async def _guarded(self, request: Request, handler: Callable[[Request], Awaitable[Response]]) -> Response:
        try:
            await self.open_ledger()
            return await handler(request)
        except PageError as error:
            return json_response(error.status, {"error": shown(str(error), MAX_ERROR_CHARS)}, error.headers)
        except (SettlementError, LedgerError) as crash:
            logger.error("the payment page failed on %s", request.url.path, exc_info=crash)
            return json_response(500, {"error": CRASH_MESSAGE})

    async def _x402_resource(self, request: Request) -> Response:
        header = payment_header(request)
        payment_request = await self._find(request)
        resource = self._hosted_url(request, payment_request.id)
        if header is not None:
            return await self.x402.pay(payment_request, header, resource)
        if request.method == "POST":
            return await self._wallet_pay(request, payment_request)
        return await self.x402.status(payment_request, resource)

    async def _page(self, request: Request) -> Response:
        request_id = request.path_params["request_id"]
        found = await self._lookup(request_id)
        if found is None:
            return self._not_found_page(
                request,
                "No such payment request",
                "This link names no payment request this server knows: it may be mistyped or cut "
                "short, or its request was deleted after it expired.",
            )
        html = render_page(
            found,
            self.offer(),
            server_name=self.server_name,
            prefix=relative_root(request),
            demo=self.demo_wallet is not None,
            now=self.collector.clock(),
        )
        return html_response(200, html)

    async def _authorization(self, request: Request) -> Response:
        """The exact EIP-712 typed data the wallet signs (the page never rebuilds the domain)."""
        require_own_page(request, self.link_base(request.scope))
        payment_request = await self._find(request)
        self._require_payable(payment_request)
        body = await json_body(request)
        payer = body.get("from")
        if not isinstance(payer, str) or not is_address(payer):
            raise PageError(400, "'from' must be the wallet's address (0x followed by 40 hex digits)")
        requirements = requirements_for(payment_request, self.offer().asset)
        now = int(self.collector.clock())
        authorization = ExactAuthorization(
            from_=to_checksum_address(payer),
            to=requirements.pay_to,
            value=requirements.amount,
            valid_after=str(now - 600),
            valid_before=str(min(now + requirements.max_timeout_seconds, int(payment_request.expires_at))),
            nonce=new_nonce(),
        )
        typed = requirement_typed_data(authorization, requirements)
        # JSON for eth_signTypedData_v4: big numbers as decimal strings, bytes32 as hex.
        message = {key: json_value(value) for key, value in typed["message"].items()}
        typed_json = {**typed, "message": message}
        return json_response(200, {"typedData": typed_json, "authorization": authorization.dump()})

    async def _wallet_pay(self, request: Request, payment_request: PaymentRequest) -> Response:
        require_own_page(request, self.link_base(request.scope))
        body = await json_body(request)
        try:
            payload = ExactPayload.model_validate(
                {"signature": body.get("signature"), "authorization": body.get("authorization")}
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = shown(".".join(str(part) for part in first["loc"]))
            raise PageError(400, f"the payment's {where} is invalid: {shown(first['msg'], 200)}") from None
        return await self._collect_for_page(
            payment_request, payload, self._hosted_url(request, payment_request.id)
        )

    async def _demo(self, request: Request) -> Response:
        if self.demo_wallet is None:
            raise PageError(404, "the demo wallet is only available on the embedded development chain")
        require_own_page(request, self.link_base(request.scope))
        payment_request = await self._find(request)
        await json_body(request)
        self._require_payable(payment_request)
        requirements = requirements_for(payment_request, self.offer().asset)
        payload = await self.demo_wallet.sign(requirements)
        return await self._collect_for_page(
            payment_request, payload, self._hosted_url(request, payment_request.id)
        )

    async def _collect_for_page(
        self, payment_request: PaymentRequest, payload: ExactPayload, resource: str
    ) -> Response:
        offer = self.offer()
        requirements = requirements_for(payment_request, offer.asset)
        full = PaymentPayload(
            resource=ResourceInfo(url=resource),
            accepted=requirements,
            payload=payload,
        )
        try:
            paid = await self.collector.collect(
                payment_request, full, requirements, decimals=offer.asset.decimals
            )
        except Refused as refused:
            return refusal(refused)
        return json_response(200, receipt(paid, offer, offer.network.caip2))

    # -- answers Starlette would otherwise make by itself ---------------------------------------

    async def _http_error(self, request: Request, error: Exception) -> Response:
        if not isinstance(error, HTTPException):
            return await self._crash(request, error)
        if error.status_code == 404:
            if accepts_html(request):
                return self._not_found_page(
                    request,
                    "Nothing here",
                    "There is no page at this address. A payment link ends in /pay/pr_ and "
                    "24 more characters; check that yours was not cut short.",
                )
            return json_response(404, {"error": "there is nothing at this address"})
        if error.status_code == 405:
            allowed = (error.headers or {}).get("Allow", "")
            method = shown(request.method, 16)
            message = (
                f"{method} is not allowed here; use {allowed}" if allowed else f"{method} is not allowed here"
            )
            return json_response(405, {"error": message}, {"Allow": allowed} if allowed else None)
        return json_response(error.status_code, {"error": shown(error.detail, 200)}, error.headers)

    async def _crash(self, request: Request, error: Exception) -> Response:
        # Starlette's error middleware logs nothing itself and re-raises after this
        # answer, so the server logs the traceback; the caller gets a short message.
        return json_response(500, {"error": CRASH_MESSAGE})

    def _not_found_page(self, request: Request, title: str, detail: str) -> Response:
        return html_response(404, render_not_found(title, detail, prefix=relative_root(request)))

    # -- helpers ---------------------------------------------------------------------------------

    def _hosted_url(self, request: Request, request_id: str) -> str:
        """This request's hosted URL, on the configured (never the requested) base."""
        return dataclasses.replace(self.offer(), public_url=self.link_base(request.scope)).hosted_url(
            request_id
        )

    def _require_payable(self, payment_request: PaymentRequest) -> None:
        state = page_state(payment_request, self.collector.clock(), self.offer())
        if state.key != "issued":
            raise PageError(
                409, f"payment request {payment_request.id}: {state.title.lower()}. {state.detail}"
            )

    async def _lookup(self, request_id: str) -> PaymentRequest | None:
        if not is_request_id(request_id):
            return None
        # Another server's request sharing the ledger is not found here, like an unknown id.
        return await self.collector.get(request_id)

    async def _find(self, request: Request) -> PaymentRequest:
        found = await self._lookup(request.path_params["request_id"])
        if found is None:
            raise PageError(404, NO_SUCH_REQUEST)
        return found

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
from urllib.parse import quote, urlsplit

from eth_utils.address import is_address, to_checksum_address
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..chains.demo_wallet import DemoWallet
from ..core.challenge import Offer, payment_required, retry_sentence
from ..core.evm import new_nonce, requirement_typed_data
from ..core.ids import is_request_id
from ..core.states import State
from ..core.text import shown
from ..core.wire import (
    MAX_PAYLOAD_BYTES,
    ExactAuthorization,
    ExactPayload,
    PaymentPayload,
    ResourceInfo,
    SettleResponse,
    encode_header,
    parse_payment_payload,
)
from ..errors import LedgerError, MalformedPayment, SettlementError
from ..gate.collect import Collector, Refused
from ..ledger.base import PaymentRequest
from ..schemes.exact.evm import requirements_for
from ..schemes.exact.matching import referenced_request_id
from .bodies import BadContentLength, BadJson, BodyTimeout, BodyTooLarge, parse_json_body, read_bounded
from .render import STATIC_FILES, asset_text, page_state, receipt_fields, render_not_found, render_page

logger = logging.getLogger("x402_mcp.page")

MAX_BODY_BYTES = MAX_PAYLOAD_BYTES
PAYMENT_HEADERS = ("payment-signature", "x-payment")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# The x402 resource, for browser x402 clients on any origin. No credentials are
# involved (no cookies, no auth), so the wildcard is the honest answer.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "PAYMENT-REQUIRED, PAYMENT-RESPONSE, X-PAYMENT-RESPONSE",
}
PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": "GET, POST",
    # @x402/fetch also sends `Access-Control-Expose-Headers` as a request header.
    "Access-Control-Allow-Headers": (
        "PAYMENT-SIGNATURE, X-PAYMENT, Access-Control-Expose-Headers, Content-Type, Accept"
    ),
    "Access-Control-Max-Age": "600",
}
# Sec-Fetch-Site values of a request the page itself made ("none": typed or bookmarked).
OWN_PAGE_SITES = frozenset({"same-origin", "none"})
CRASH_MESSAGE = "The payment could not be processed right now; nothing was charged unless a receipt is shown."
NO_SUCH_REQUEST = "there is no such payment request"
# Every error text is bounded and made inert once more on its way out: messages
# from below (wire, collector) may quote a payment, which the caller wrote.
MAX_ERROR_CHARS = 400


class PageError(Exception):
    """A caller-fixable problem with a request to the page, answered as JSON `{error}`."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


class SecureHeaders:
    """Adds `SECURITY_HEADERS` to every HTTP response of `app` that lacks them.

    Pure ASGI around the whole app, so the answers Starlette makes by itself
    (404, 405, and the 500 of its error middleware) are covered as well.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_secured)


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
        collector: Collector,
        offer: Callable[[], Offer],
        *,
        link_base: Callable[[Mapping[str, Any]], str] | None = None,
        server_name: str = "MCP server",
        demo_wallet: DemoWallet | None = None,
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
            return _plain(404, "Not found.")
        return Response(asset_text(name), media_type=media_type)

    async def resource(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=PREFLIGHT_HEADERS)
        if _wants_page(request):
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
            return _json(error.status, {"error": shown(str(error), MAX_ERROR_CHARS)}, error.headers)
        except (SettlementError, LedgerError) as crash:
            logger.error("the payment page failed on %s", request.url.path, exc_info=crash)
            return _json(500, {"error": CRASH_MESSAGE})

    async def _x402_resource(self, request: Request) -> Response:
        payment_header = _payment_header(request)
        payment_request = await self._find(request)
        resource = self._hosted_url(request, payment_request.id)
        if payment_header is not None:
            return await self._x402_pay(payment_request, payment_header, resource)
        if request.method == "POST":
            return await self._wallet_pay(request, payment_request)
        return await self._x402_status(payment_request, resource)

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
            prefix=_relative_root(request),
            demo=self.demo_wallet is not None,
            now=self.collector.clock(),
        )
        return _html(200, html)

    async def _authorization(self, request: Request) -> Response:
        """The exact EIP-712 typed data the wallet signs (the page never rebuilds the domain)."""
        self._require_own_page(request)
        payment_request = await self._find(request)
        self._require_payable(payment_request)
        body = await _json_body(request)
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
        message = {key: _json_value(value) for key, value in typed["message"].items()}
        typed_json = {**typed, "message": message}
        return _json(200, {"typedData": typed_json, "authorization": authorization.dump()})

    async def _wallet_pay(self, request: Request, payment_request: PaymentRequest) -> Response:
        self._require_own_page(request)
        body = await _json_body(request)
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
        self._require_own_page(request)
        payment_request = await self._find(request)
        await _json_body(request)
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
            return _refusal(refused)
        return _json(200, self._receipt(paid, offer, offer.network.caip2))

    # -- the x402 HTTP resource ---------------------------------------------------------------

    async def _x402_status(self, payment_request: PaymentRequest, resource: str) -> Response:
        now = self.collector.clock()
        if payment_request.state is State.ISSUED and not payment_request.is_expired(now):
            return await self._payment_required(payment_request, None, resource)
        offer = self.offer()
        state = page_state(payment_request, now, offer)
        body: dict[str, Any] = {
            "state": state.key,
            "paymentRequestId": payment_request.id,
            "detail": state.detail,
        }
        if payment_request.tx_hash is not None:
            body["receipt"] = receipt_fields(payment_request, offer)
        if payment_request.state in (State.PAID, State.REDEEMING, State.SETTLING):
            return _json(200, {**body, "next": retry_sentence(payment_request)})
        return _json(410, {**body, "error": state.detail})

    async def _payment_required(
        self, payment_request: PaymentRequest, error: str | None, resource: str
    ) -> Response:
        accepts = await self.collector.accepts(payment_request)
        required = payment_required(payment_request, error=error, accepts=accepts)
        # Over HTTP the resource is this URL (the MCP challenge names the tool):
        # x402 browser clients fetch `resource.url` once they have paid.
        hosted = ResourceInfo(
            url=resource, description=payment_request.description, mime_type="application/json"
        )
        required = required.model_copy(update={"resource": hosted})
        headers = {"PAYMENT-REQUIRED": encode_header(required)}
        return _json(402, required.dump(), headers)

    async def _x402_pay(self, payment_request: PaymentRequest, header: str, resource: str) -> Response:
        try:
            payload = parse_payment_payload(header)
        except MalformedPayment as error:
            raise PageError(400, str(error)) from None
        echoed = referenced_request_id(payload)
        if echoed is not None and echoed != payment_request.id:
            raise PageError(
                400, f"this payment is for payment request {shown(echoed)}, not {payment_request.id}"
            )
        offer = self.offer()
        try:
            requirements = await self.collector.requirements(payment_request, payload)
            paid = await self.collector.collect(
                payment_request, payload, requirements, decimals=offer.asset.decimals
            )
        except Refused as refused:
            current = refused.request or await self.collector.get(payment_request.id)
            now = self.collector.clock()
            if current is not None and current.state is State.ISSUED and not current.is_expired(now):
                return await self._payment_required(
                    current, shown(str(refused.error), MAX_ERROR_CHARS), resource
                )
            return _refusal(refused)
        response = SettleResponse(
            success=True,
            transaction=paid.tx_hash or "",
            network=requirements.network,
            payer=paid.payer,
            amount=str(paid.price),
        )
        receipt = self._receipt(paid, offer, requirements.network)
        return _json(200, receipt, {"PAYMENT-RESPONSE": encode_header(response)})

    # -- answers Starlette would otherwise make by itself ---------------------------------------

    async def _http_error(self, request: Request, error: Exception) -> Response:
        if not isinstance(error, HTTPException):
            return await self._crash(request, error)
        if error.status_code == 404:
            if _accepts_html(request):
                return self._not_found_page(
                    request,
                    "Nothing here",
                    "There is no page at this address. A payment link ends in /pay/pr_ and "
                    "24 more characters; check that yours was not cut short.",
                )
            return _json(404, {"error": "there is nothing at this address"})
        if error.status_code == 405:
            allowed = (error.headers or {}).get("Allow", "")
            method = shown(request.method, 16)
            message = (
                f"{method} is not allowed here; use {allowed}" if allowed else f"{method} is not allowed here"
            )
            return _json(405, {"error": message}, {"Allow": allowed} if allowed else None)
        return _json(error.status_code, {"error": shown(error.detail, 200)}, error.headers)

    async def _crash(self, request: Request, error: Exception) -> Response:
        # Starlette's error middleware logs nothing itself and re-raises after this
        # answer, so the server logs the traceback; the caller gets a short message.
        return _json(500, {"error": CRASH_MESSAGE})

    def _not_found_page(self, request: Request, title: str, detail: str) -> Response:
        return _html(404, render_not_found(title, detail, prefix=_relative_root(request)))

    # -- helpers ---------------------------------------------------------------------------------

    def _hosted_url(self, request: Request, request_id: str) -> str:
        """This request's hosted URL, on the configured (never the requested) base."""
        return dataclasses.replace(self.offer(), public_url=self.link_base(request.scope)).hosted_url(
            request_id
        )

    def _require_own_page(self, request: Request) -> None:
        """Refuse what only the page itself may ask, when it comes from elsewhere (see module doc)."""
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != "application/json":
            raise PageError(
                415, "send this request as JSON (Content-Type: application/json), as the payment page does"
            )
        site = request.headers.get("sec-fetch-site")
        origin = request.headers.get("origin")
        if site is not None:
            own = site.strip().lower() in OWN_PAGE_SITES
        elif origin is not None:
            own = origin in self._own_origins(request)
        else:
            own = True  # no browser sent this, so no other site can have made it send it
        if not own:
            raise PageError(403, "this can only be done from the payment page itself, not from another site")

    def _own_origins(self, request: Request) -> set[str]:
        configured = urlsplit(self.link_base(request.scope))
        origins = {f"{configured.scheme}://{configured.netloc}"}
        host = request.headers.get("host")
        if host:
            origins.add(f"{request.url.scheme}://{host}")
        return origins

    def _receipt(self, paid: PaymentRequest, offer: Offer, network: str) -> dict[str, Any]:
        """The page's JSON receipt; `network` is where it settled (our explorer knows only the EVM one)."""
        receipt = receipt_fields(paid, offer, network)
        return {
            "state": "paid",
            "paymentRequestId": paid.id,
            "tool": paid.tool,
            "txHash": receipt["txHash"],
            "txUrl": receipt["txUrl"],
            "payer": paid.payer,
            "receipt": receipt,
            "next": retry_sentence(paid),
        }

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


def _refusal(refused: Refused) -> Response:
    return _json(402, {"error": shown(str(refused.error), MAX_ERROR_CHARS), "reason": refused.error.reason})


def _relative_root(request: Request) -> str:
    """The app's root relative to the requested path (`..` for `/pay/{id}`).

    The page links its assets and endpoints relative to where it was opened, so
    it also works behind a proxy that serves it under a path prefix.
    """
    path: str = request.scope["path"]
    root_path: str = request.scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    depth = max(0, path.count("/") - 1)
    return "/".join([".."] * depth) or "."


def _payment_header(request: Request) -> str | None:
    return next((request.headers[name] for name in PAYMENT_HEADERS if name in request.headers), None)


def _accepts_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _wants_page(request: Request) -> bool:
    """A person's browser opening the link (an x402 client asks for JSON, or pays)."""
    return request.method == "GET" and _payment_header(request) is None and _accepts_html(request)


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, int):
        return str(value)
    return value


async def _json_body(request: Request) -> dict[str, Any]:
    """The JSON object a page action sends, read with the one bounded reader and parser."""
    try:
        raw = await read_bounded(request, MAX_BODY_BYTES)
    except (BadContentLength, BodyTooLarge):
        raise PageError(
            413, f"the request body is too large; at most {MAX_BODY_BYTES} bytes are accepted"
        ) from None
    except BodyTimeout as timeout:
        # The client is still sending (or stalled): answer and drop the connection.
        raise PageError(408, f"{timeout}; send it again", {"Connection": "close"}) from None
    if not raw:
        return {}
    try:
        value = parse_json_body(raw)
    except BadJson as error:
        raise PageError(400, str(error)) from None
    if not isinstance(value, dict):
        raise PageError(400, "the request body must be a JSON object")
    return value


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def _html(status: int, text: str) -> Response:
    return Response(text, status_code=status, media_type="text/html; charset=utf-8")


def _plain(status: int, text: str) -> Response:
    return Response(text, status_code=status, media_type="text/plain; charset=utf-8")

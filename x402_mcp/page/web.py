"""The HTTP side of the payment page: its security and CORS headers, `PageError`, reading a
page action's JSON body, and the responses every route makes (see `page.app` for who may call
what, from where)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..core.text import shown
from ..core.wire import MAX_PAYLOAD_BYTES
from ..errors import Refused, X402MCPError
from .bodies import BadContentLength, BadJson, BodyTimeout, BodyTooLarge, parse_json_body, read_bounded

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


class PageError(X402MCPError):
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


def require_own_page(request: Request, link_base: str) -> None:
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
        own = origin in _own_origins(request, link_base)
    else:
        own = True  # no browser sent this, so no other site can have made it send it
    if not own:
        raise PageError(403, "this can only be done from the payment page itself, not from another site")


def _own_origins(request: Request, link_base: str) -> set[str]:
    configured = urlsplit(link_base)
    origins = {f"{configured.scheme}://{configured.netloc}"}
    host = request.headers.get("host")
    if host:
        origins.add(f"{request.url.scheme}://{host}")
    return origins


def refusal(refused: Refused) -> Response:
    return json_response(
        402, {"error": shown(str(refused.error), MAX_ERROR_CHARS), "reason": refused.error.reason}
    )


def relative_root(request: Request) -> str:
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


def payment_header(request: Request) -> str | None:
    return next((request.headers[name] for name in PAYMENT_HEADERS if name in request.headers), None)


def accepts_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def wants_page(request: Request) -> bool:
    """A person's browser opening the link (an x402 client asks for JSON, or pays)."""
    return request.method == "GET" and payment_header(request) is None and accepts_html(request)


def json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, int):
        return str(value)
    return value


async def json_body(request: Request) -> dict[str, Any]:
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


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def html_response(status: int, text: str) -> Response:
    return Response(text, status_code=status, media_type="text/html; charset=utf-8")


def plain_response(status: int, text: str) -> Response:
    return Response(text, status_code=status, media_type="text/plain; charset=utf-8")

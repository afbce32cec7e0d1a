"""The operator page: revenue, recent payments and what awaits attention, read-only.

Opt-in: served at `/operator` beside the payment page only when an operator token is
set (`Payments(operator_token=...)` or `X402_OPERATOR_TOKEN`, 16 characters or more).
A browser gives the token once in a form; the page then keeps a session cookie
(HttpOnly, SameSite=Strict, Secure over HTTPS) that is an HMAC of the token, never
the token. Scripts may send `Authorization: Bearer <token>` instead. Nothing on the
page changes the ledger; it makes no request but for its own stylesheet.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources
from typing import Any, Protocol
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from ..errors import ConfigurationError
from ..ledger.base import Ledger, Owner
from ..telemetry.attention import awaiting_reconciliation
from ..telemetry.revenue import Report, revenue_report
from .operator_view import Attention, dashboard, login

TOKEN_ENV = "X402_OPERATOR_TOKEN"
MIN_TOKEN_LENGTH = 16
COOKIE = "x402_operator"
DAYS = 30
ATTENTION_EVENTS = ("awaiting_reconciliation", "awaiting_refund", "awaiting_claim")
MAX_FORM_BYTES = 4096
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def operator_token(token: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The operator token these settings give (None: no operator page).

    Raises:
        ConfigurationError: a token shorter than 16 characters.
    """
    chosen = token if token is not None else (os.environ if environ is None else environ).get(TOKEN_ENV)
    if chosen is None:
        return None
    chosen = chosen.strip()
    if len(chosen) < MIN_TOKEN_LENGTH:
        raise ConfigurationError(
            f"the operator token must be at least {MIN_TOKEN_LENGTH} characters "
            f"(operator_token= or {TOKEN_ENV}); generate one with: "
            'python -c "import secrets; print(secrets.token_urlsafe(32))"'
        )
    return chosen


class Operated(Protocol):
    """What the operator page needs of the gate it reports on (`Gate` is one)."""

    operator_token: str | None
    owner: Owner
    collector: Any
    reconciler: Any

    async def open(self) -> None: ...


def operator_page(gate: Operated, server_name: str) -> OperatorPage | None:
    """The operator page of `gate`, or None when it has no operator token (the page is opt-in)."""
    token = getattr(gate, "operator_token", None)
    if token is None:
        return None
    return OperatorPage(
        token,
        lambda: gate.collector.ledger,  # read when asked: the default ledger is chosen on install
        gate.owner,
        server_name=server_name,
        grace_seconds=lambda: float(gate.reconciler.grace_seconds),
        opened=gate.open,
    )


class OperatorPage:
    """The `/operator` routes, as one ASGI app (mounted like the payment page)."""

    def __init__(
        self,
        token: str,
        ledger: Callable[[], Ledger],
        owner: Owner,
        *,
        server_name: str,
        grace_seconds: Callable[[], float],
        opened: Callable[[], Awaitable[None]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._token = token.encode()
        self._session = hmac.new(self._token, b"x402-mcp operator session", hashlib.sha256).hexdigest()
        self._ledger = ledger
        self.owner = owner
        self.server_name = server_name
        self._grace_seconds = grace_seconds
        self._opened = opened
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self._answer(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        await response(scope, receive, send)

    async def _answer(self, request: Request) -> Response:
        path = request.url.path.rstrip("/")
        if path == "/operator/operator.css" and request.method == "GET":
            css = resources.files("x402_mcp.page").joinpath("static/operator.css").read_text()
            return Response(css, media_type="text/css")
        if path == "/operator/login" and request.method == "POST":
            return await self._login(request)
        if path == "/operator" and request.method in ("GET", "HEAD"):
            if not self._authorized(request):
                return HTMLResponse(login(self.server_name, refused=False), status_code=401)
            return HTMLResponse(await self._dashboard())
        if path in ("/operator", "/operator/login", "/operator/operator.css"):
            return PlainTextResponse("method not allowed\n", status_code=405)
        return PlainTextResponse("not found\n", status_code=404)

    def _authorized(self, request: Request) -> bool:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), self._token):
            return True
        cookie = request.cookies.get(COOKIE, "")
        return hmac.compare_digest(cookie.encode(), self._session.encode())

    async def _login(self, request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return PlainTextResponse("the form is too large\n", status_code=413)
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=4)
        presented = (fields.get("token") or [""])[0].strip().encode()
        if not hmac.compare_digest(presented, self._token):
            return HTMLResponse(login(self.server_name, refused=True), status_code=401)
        response = RedirectResponse("/operator", status_code=303)
        response.set_cookie(
            COOKIE,
            self._session,
            path="/operator",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            max_age=12 * 3600,
        )
        return response

    async def _dashboard(self) -> str:
        await self._opened()
        ledger = self._ledger()
        now = self.clock()
        today = datetime.datetime.fromtimestamp(now, datetime.UTC).date()
        midnight = datetime.datetime(today.year, today.month, today.day, tzinfo=datetime.UTC)
        since = midnight - datetime.timedelta(days=DAYS - 1)
        report: Report = await revenue_report(ledger, since=since.timestamp(), until=None, owner=self.owner)
        return dashboard(
            report, await self._attention(ledger, now), server_name=self.server_name, days=DAYS, today=today
        )

    async def _attention(self, ledger: Ledger, now: float) -> list[Attention]:
        items = [
            Attention(request.created_at, request.id, "settlement cut short: awaiting reconciliation")
            for request in await awaiting_reconciliation(
                ledger, now=now, grace_seconds=self._grace_seconds(), limit=50, owner=self.owner
            )
        ]
        notes = [line for line in await ledger.audit_trail() if line[2] in ATTENTION_EVENTS][-50:]
        for at, request_id, event, detail in reversed(notes):
            if request_id is not None and await ledger.get(request_id, owner=self.owner) is None:
                continue  # another server's request, in a shared ledger
            items.append(Attention(at, request_id or "(no request)", f"{event.replace('_', ' ')}: {detail}"))
        return items

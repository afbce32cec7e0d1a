"""The payment card: a paid tool's challenge as an MCP App (`io.modelcontextprotocol/ui`).

Hosts that render MCP Apps (Claude Desktop and web, ChatGPT, VS Code, Cursor,
Goose) show a tool's `_meta.ui.resourceUri` as a sandboxed iframe next to its
result. So every paid tool's `tools/list` entry names `CARD_URI`, and the card
(package data: `static/card.html`, `card.css`, `card.js`, inlined, no script
from anywhere) shows the price, opens the hosted page through the host
(`ui/open-link`), follows the payment on the hosted URL's status, and once
paid runs the tool through the host (`tools/call` with `payment_request_id`).

Why a challenge is not an error for such a host: hosts disagree on an app
whose result has `isError: true` (ext-apps issue #694: ChatGPT unmounts the
iframe, Claude never mounts it, Goose renders it but hides the flag). A card
behind an error would never be seen where it matters. So, only for a client
that negotiated MCP Apps (`client_supports_apps`), the challenge goes out with
`isError: false`, its text unchanged ("Payment required: …"), without
`structuredContent`, and with `_meta["x402-mcp/card"]` for the card. Since
clients (the TypeScript and Python SDKs) check a non-error result against the
tool's `outputSchema`, which a challenge can never match, such a client is
listed the paid tools without `outputSchema` (their results still carry
`structuredContent`). Every other client, agents with x402 wallets included,
gets exactly the usual listing and challenge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel

from ..core.challenge import META_HOSTED_URL, META_REQUEST_ID, REQUEST_ID_ARGUMENT, Offer
from ..core.money import format_usd
from ..ledger.base import Ledger, Owner
from .render import asset_text

if TYPE_CHECKING:
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

# The MCP SDK 2.x names the card needs are imported where it is installed on a server: MCP SDK
# 1.x has no MCP Apps, and this module must import there too (its doors show no card).

logger = logging.getLogger("x402_mcp.page")

CARD_URI = "ui://x402-mcp/payment-card.html"
META_CARD = "x402-mcp/card"


@cache
def card_html() -> str:
    """The card as one document: its stylesheet and script inlined (a host renders it via srcdoc)."""
    html = asset_text("card.html")
    return html.replace("$style", asset_text("card.css")).replace("$script", asset_text("card.js"))


def card_csp(public_url: str) -> dict[str, list[str]]:
    """`_meta.ui.csp`: the card may fetch only the hosted page's origin (its status), nothing else."""
    parts = urlsplit(public_url)
    return {"connectDomains": [f"{parts.scheme}://{parts.netloc}"], "resourceDomains": []}


class CardHost(Protocol):
    """What the card needs of the gate (`Gate` is one); a protocol, so this page-layer module
    never imports the gate above it."""

    @property
    def offer(self) -> Offer: ...

    @property
    def ledger(self) -> Ledger: ...

    @property
    def owner(self) -> Owner: ...

    @property
    def link(self) -> Any: ...


class PaymentCard:
    """Adds the card to a server that `payments` is attached to: its resource and its middleware.

    `paid_tool(name)` says whether tool `name` is paid (the door knows its framework's registry).
    """

    def __init__(self, payments: CardHost, paid_tool: Callable[[str], object | None]) -> None:
        self.payments = payments
        self.paid_tool = paid_tool

    def install(self, server: Any) -> None:
        from mcp.server.apps import APP_MIME_TYPE
        from mcp.server.mcpserver.resources import TextResource

        server.add_resource(
            TextResource(
                uri=CARD_URI,
                name="x402-payment-card",
                title="Payment card",
                description="Shows a paid tool's price and follows its payment (MCP Apps).",
                mime_type=APP_MIME_TYPE,
                text=card_html(),
            )
        )
        server.middleware.append(self.middleware)

    async def middleware(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        from mcp.server.apps import client_supports_apps

        result = await call_next(ctx)
        params = ctx.params or {}
        if ctx.method == "tools/list" and isinstance(result, dict):
            apps = client_supports_apps(ctx)
            for tool in result.get("tools", []):
                if self.paid_tool(tool.get("name", "")) is not None:
                    mark_listed(tool, apps=apps)
            return result
        if ctx.method == "resources/read" and params.get("uri") == CARD_URI:
            read = _as_dict(result)
            if not isinstance(read, dict):
                return result
            ui = await self.resource_ui(ctx.request)
            for content in read.get("contents", []):
                content["_meta"] = {**(content.get("_meta") or {}), "ui": ui}
            return read
        if ctx.method == "tools/call" and client_supports_apps(ctx):
            called = _as_dict(result)
            return await self.as_card(called) if isinstance(called, dict) else result
        return result

    async def resource_ui(self, request: Any) -> dict[str, Any]:
        """`_meta.ui` of the card's resource: its CSP (the hosted page's origin) and border."""
        # The hosted page's origin is known once the page is served (a side port starts on
        # first use), so the page is started, and its origin added, per read.
        try:
            await self.payments.link.ensure(request)
        except (OSError, TimeoutError):
            logger.exception("could not start the payment page; the card may not follow the payment")
        return {"csp": card_csp(self.payments.offer.public_url), "prefersBorder": True}

    async def as_card(self, result: dict[str, Any]) -> dict[str, Any]:
        """A challenge, as an Apps host shows it: not an error, with what the card needs (module doc)."""
        meta = result.get("_meta") or {}
        request_id = meta.get(META_REQUEST_ID)
        if not result.get("isError") or META_HOSTED_URL not in meta or not isinstance(request_id, str):
            return result
        # Another server's request sharing the ledger is no card of this server's.
        request = await self.payments.ledger.get(request_id, owner=self.payments.owner)
        if request is None:
            return result
        offer = self.payments.offer
        card = {
            "tool": request.tool,
            "price": format_usd(request.price, offer.asset.decimals),
            "description": request.description or request.tool,
            "expiresAt": request.expires_at,
            "hostedUrl": meta[META_HOSTED_URL],
            "retryArguments": {REQUEST_ID_ARGUMENT: request.id},
        }
        shown = {key: value for key, value in result.items() if key != "structuredContent"}
        return {**shown, "isError": False, "_meta": {**meta, META_CARD: card}}


def mark_listed(tool: dict[str, Any], *, apps: bool) -> None:
    """Name the card in a paid tool's `tools/list` entry (`_meta.ui.resourceUri`); for a client
    that negotiated MCP Apps, also leave out its `outputSchema`."""
    meta = tool.get("_meta") or {}
    tool["_meta"] = {**meta, "ui": {**(meta.get("ui") or {}), "resourceUri": CARD_URI}}
    if apps:
        # Its challenge is not an error here (module doc), and a client checks a
        # non-error result against `outputSchema`: the challenge could never pass.
        tool.pop("outputSchema", None)


def _as_dict(result: Any) -> Any:
    if isinstance(result, BaseModel):
        return result.model_dump(by_alias=True, exclude_none=True, mode="json")
    return result

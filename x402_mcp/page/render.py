"""The HTML of the payment page: a package-data template filled with escaped values."""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from string import Template
from typing import Any

from ..challenge import Offer
from ..ledger.base import PaymentRequest
from ..lifecycle import State
from ..money import format_usd, from_atomic

STATIC_FILES = {"pay.css": "text/css; charset=utf-8", "pay.js": "text/javascript; charset=utf-8"}

# Public RPC endpoints a wallet may add when it does not know the chain yet.
KNOWN_RPC_URLS: dict[int, list[str]] = {
    8453: ["https://mainnet.base.org"],
    84532: ["https://sepolia.base.org"],
}


@cache
def asset_text(name: str) -> str:
    """A file of `page/static/`, read once."""
    return files(__package__).joinpath("static", name).read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class PageState:
    """What the page says about a request's state: a css/state key, a title and a sentence."""

    key: str
    title: str
    detail: str


def page_state(request: PaymentRequest, now: float) -> PageState:
    if request.state is State.EXPIRED or request.is_expired(now):
        return PageState(
            "expired", "Expired", "This payment request expired unpaid. Call the tool again for a new link."
        )
    if request.state is State.ISSUED:
        return PageState(
            "issued", "Awaiting payment", "Pay with your browser wallet to unlock one call of this tool."
        )
    if request.state is State.SETTLING:
        return PageState("settling", "Settling", "A payment for this request is being settled right now.")
    if request.state is State.CONSUMED:
        return PageState(
            "consumed", "Already used", "This request was paid and the tool call it bought has run."
        )
    return PageState("paid", "Paid", f"Go back to your chat and call {request.tool} again: it will run once.")


def render_not_found(title: str, detail: str, *, prefix: str) -> str:
    """The page's 404, styled like the page, saying what the visitor can do next.

    `prefix`: the app's root, relative to the requested path (see `render_page`).
    """
    values = {"static": f"{prefix}/pay/_static", "title": title, "detail": detail}
    return Template(asset_text("notfound.html")).substitute({k: html.escape(v) for k, v in values.items()})


def _json_for_script(value: Any) -> str:
    # Inside <script type="application/json"> only "</" could end the element early;
    # escaping <, > and & keeps any string the ledger holds inert.
    text = json.dumps(value, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_page(
    request: PaymentRequest,
    offer: Offer,
    *,
    server_name: str,
    prefix: str,
    demo: bool,
    now: float | None = None,
) -> str:
    """The page for `request`; every value is escaped for where it lands.

    `prefix`: the app's root relative to the page's own path (`..`), so assets and
    endpoints resolve under whatever path prefix a proxy serves the page at.
    """
    now = time.time() if now is None else now
    state = page_state(request, now)
    decimals = offer.asset.decimals
    tx_url = (offer.network.tx_url(request.tx_hash) if request.tx_hash else None) or ""
    base = f"{prefix}/pay/{request.id}"
    data = {
        "id": request.id,
        "tool": request.tool,
        "state": state.key,
        "expiresAt": request.expires_at,
        "chain": {
            "id": offer.network.chain_id,
            "label": offer.network.label,
            "rpcUrls": KNOWN_RPC_URLS.get(offer.network.chain_id, []),
            "explorer": offer.network.explorer,
        },
        "endpoints": {
            "authorization": f"{base}/authorization",
            "pay": base,
            "demo": f"{base}/demo" if demo else None,
        },
    }
    minutes = max(0, round((request.expires_at - now) / 60))
    values = {
        "static": f"{prefix}/pay/_static",
        "price_usd": format_usd(request.price, decimals),
        "tokens": str(from_atomic(request.price, decimals)),
        "symbol": offer.asset.symbol,
        "tool": request.tool,
        "server": server_name,
        "description": request.description or request.tool,
        "network_label": offer.network.label,
        "network": request.network,
        "pay_to": request.pay_to,
        "request_id": request.id,
        "expires_text": f"in about {minutes} minutes" if state.key == "issued" else "—",
        "state": state.key,
        "state_title": state.title,
        "state_detail": state.detail,
        "tx_hash": request.tx_hash or "",
        "tx_url": tx_url,
        "receipt_hidden": "" if request.tx_hash else " hidden",
        "actions_hidden": "" if state.key == "issued" else " hidden",
        "demo_hidden": "" if demo else " hidden",
    }
    escaped = {key: value if key.endswith("_hidden") else html.escape(value) for key, value in values.items()}
    return Template(asset_text("pay.html")).substitute(escaped, data_json=_json_for_script(data))

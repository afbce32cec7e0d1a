"""The HTML of the payment page: a package-data template filled with escaped values.

What the page says in each state lives here, in one table (`WORDING`): the
server renders the state it knows, and the page's script gets the same table
to move between states without a reload.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from string import Template
from typing import Any

from ..core.challenge import Offer, retry_sentence
from ..core.money import format_amount, format_usd
from ..core.networks import Network
from ..core.states import State
from ..ledger.base import PaymentRequest

STATIC_FILES = {"pay.css": "text/css; charset=utf-8", "pay.js": "text/javascript; charset=utf-8"}

# Public RPC endpoints a wallet may add when it does not know the chain yet.
KNOWN_RPC_URLS: dict[int, list[str]] = {
    8453: ["https://mainnet.base.org"],
    84532: ["https://sepolia.base.org"],
}
# Where a payer gets free test USDC (Circle's faucet serves Base Sepolia).
FAUCETS: dict[int, str] = {84532: "https://faucet.circle.com/"}

USDC_LINE = "USDC is a digital dollar: 1 USDC is always worth 1 US dollar."
NOTHING_CHARGED = "Nothing has been charged."


@dataclass(frozen=True, slots=True)
class Wording:
    """What the page says in one state: a title, what happened to the money, what to do next.

    `{tool}`, `{price}`, `{chain}`, `{retry}` and `{retry_now}` are filled in by the server; the
    script fills `{account}`, `{balance}` and `{reason}` from what the wallet said.
    """

    icon: str
    title: str
    money: str
    next: str


WORDING: dict[str, Wording] = {
    "issued": Wording(
        "→",
        "Waiting for your payment",
        "Nothing has been charged yet.",
        "Pay {price} with your wallet to unlock one call of {tool}.",
    ),
    "connecting": Wording(
        "…",
        "Connecting to your wallet",
        "Nothing has been charged yet.",
        "Answer the request in your wallet's window.",
    ),
    "checking": Wording(
        "…",
        "Checking your balance",
        "Nothing has been charged yet.",
        "This takes a moment.",
    ),
    "signing": Wording(
        "…",
        "Approve the payment in your wallet",
        "Nothing has been charged yet.",
        "Check that your wallet shows {price} to the address in the details, then approve it. "
        "You pay no network fee.",
    ),
    "settling": Wording(
        "…",
        "Sending your payment",
        "Your payment is being settled on {chain}; this takes a few seconds.",
        "Keep this page open: it updates by itself.",
    ),
    "paid": Wording(
        "✓",
        "Paid",
        "{price} was paid; nothing more will be charged for this call.",
        "{retry_now}",
    ),
    "paid-elsewhere": Wording(
        "✓",
        "Already paid",
        "This request was paid, in another tab or by another app. Nothing more will be charged for it.",
        "{retry_now}",
    ),
    "consumed": Wording(
        "✓",
        "Already used",
        "This request was paid and the call of {tool} it bought has run. Nothing more will be charged.",
        "To use {tool} again, call it in your chat: it answers with a new payment link.",
    ),
    "expired": Wording(
        "⏱",
        "Expired",
        NOTHING_CHARGED + " This link ran out of time before it was paid.",
        "Call {tool} again in your chat for a new link.",
    ),
    "unknown": Wording(
        "?",
        "This payment request is gone",
        NOTHING_CHARGED,
        "Call {tool} again in your chat for a new link.",
    ),
    "unreachable": Wording(
        "!",
        "Can't reach the server",
        "If you already approved the payment it may still go through; it is never charged twice.",
        "Check your internet connection. This page tries again by itself every few seconds.",
    ),
    "no-wallet": Wording(
        "!",
        "No browser wallet found",
        NOTHING_CHARGED,
        "Install a wallet such as MetaMask, Coinbase Wallet or Rabby and reload this page, "
        "or pay from an x402 client at this same address.",
    ),
    "rejected": Wording(
        "✕",
        "You cancelled in your wallet",
        NOTHING_CHARGED,
        "Press Pay to try again whenever you are ready.",
    ),
    "wrong-chain": Wording(
        "!",
        "Your wallet is on another network",
        NOTHING_CHARGED,
        "Switch your wallet to {chain}, then press Pay again.",
    ),
    "short": Wording(
        "!",
        "Not enough USDC",
        NOTHING_CHARGED + " Your account {account} holds {balance}; this costs {price}.",
        "Add USDC to this account, or choose an account that has enough, then press Pay again.",
    ),
    "wallet-error": Wording("✕", "Your wallet reported a problem", NOTHING_CHARGED, "{reason}"),
    "refused": Wording(
        "✕",
        "The payment was not accepted",
        NOTHING_CHARGED,
        "{reason} Press Pay to try again.",
    ),
}


# The footer says where to go back to, and how to get the call once paid.
PENDING_FOOTER = "{retry} Go back to the chat with {server} once this page says Paid."
FOOTERS = {
    "paid": "Go back to the chat with {server}: you can close this page.",
    "paid-elsewhere": "Go back to the chat with {server}: you can close this page.",
    "consumed": "Nothing is left to do here: you can close this page and go back to the chat with {server}.",
    "expired": "Nothing is left to do here: go back to the chat with {server} for a new link.",
    "unknown": "Nothing is left to do here: go back to the chat with {server} for a new link.",
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


def state_key(request: PaymentRequest, now: float) -> str:
    """The page's name for what the ledger knows about `request` (a key of `WORDING`)."""
    if request.state is State.EXPIRED or request.is_expired(now):
        return "expired"
    if request.state is State.ISSUED:
        return "issued"
    if request.state is State.SETTLING:
        return "settling"
    if request.state is State.CONSUMED:
        return "consumed"
    return "paid"


def filled_wording(
    request: PaymentRequest, offer: Offer, server_name: str = "MCP server"
) -> dict[str, dict[str, str]]:
    """`WORDING` (and footers) with this request's tool, price, chain and retry instruction filled in."""
    retry = retry_sentence(request)
    values = {
        "server": server_name,
        "tool": request.tool,
        "price": format_usd(request.price, offer.asset.decimals),
        "chain": offer.network.label,
        "retry": retry,
        # Once paid, "After paying, call..." reads as "Now call...".
        "retry_now": "Now " + retry.removeprefix("After paying, "),
    }

    def fill(text: str) -> str:
        for name, value in values.items():
            text = text.replace("{" + name + "}", value)
        return text

    return {
        key: {
            "icon": w.icon,
            "title": w.title,
            "money": fill(w.money),
            "next": fill(w.next),
            "footer": fill(FOOTERS.get(key, PENDING_FOOTER)),
        }
        for key, w in WORDING.items()
    }


def page_state(request: PaymentRequest, now: float, offer: Offer) -> PageState:
    """The request's state in the page's words (also the x402 status body's `detail`)."""
    key = state_key(request, now)
    words = filled_wording(request, offer)[key]
    return PageState(key, words["title"], f"{words['money']} {words['next']}")


def money_note(network: Network, *, demo: bool) -> tuple[str, str | None]:
    """The line about what kind of money this is, and the faucet link for test money (if any)."""
    if network.is_dev_chain or demo:
        # The demo wallet is named only where the page offers it (a DevChain's page).
        offered = " The demo wallet pays with it at one click." if demo else ""
        return (
            f"{network.label} is a local test chain on the server's machine: this is test money "
            f"with no value.{offered}",
            None,
        )
    if network.is_known_testnet:  # not `testnet`: an unknown chain id is not assumed to be one
        faucet = FAUCETS.get(network.chain_id)
        where = " Get free test USDC from Circle's faucet." if faucet else ""
        return f"This is test money on {network.label}: it has no value.{where}", faucet
    return USDC_LINE, None


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


def receipt_fields(request: PaymentRequest, offer: Offer, network: str | None = None) -> dict[str, Any]:
    """What a receipt shows: amount, payer, time and the transaction (with a link where one exists).

    `network` is where it settled (our explorer knows only the EVM one); by default the request's.
    """
    settled_on = network or request.network
    explorer_knows = request.tx_hash is not None and settled_on == offer.network.caip2
    return {
        "amount": format_usd(request.price, offer.asset.decimals),
        "tokens": format_amount(request.price, offer.asset.decimals, offer.asset.symbol),
        "payer": request.payer,
        "paidAt": request.paid_at,
        "txHash": request.tx_hash,
        "txUrl": offer.network.tx_url(request.tx_hash) if explorer_knows and request.tx_hash else None,
    }


def _receipt_html(receipt: dict[str, Any]) -> str:
    if not receipt["txHash"]:
        return ""
    tx = html.escape(receipt["txHash"])
    if receipt["txUrl"]:
        return (
            f'<a id="tx-link" class="mono" href="{html.escape(receipt["txUrl"])}" '
            f'rel="noopener noreferrer" target="_blank">{tx}</a>'
        )
    return f'<span id="tx-link" class="mono">{tx}</span>'


def _faucet_html(faucet: str | None) -> str:
    if faucet is None:
        return ""
    href = html.escape(faucet)
    return f'<a id="faucet" href="{href}" rel="noopener noreferrer" target="_blank">Open the faucet</a>'


def _paid_at_text(paid_at: float | None) -> str:
    if paid_at is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(paid_at))


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
    key = state_key(request, now)
    words = filled_wording(request, offer, server_name)
    shown_words = words[key]
    decimals = offer.asset.decimals
    base = f"{prefix}/pay/{request.id}"
    note, faucet = money_note(offer.network, demo=demo)
    receipt = receipt_fields(request, offer)
    price_usd = format_usd(request.price, decimals)
    data = {
        "id": request.id,
        "tool": request.tool,
        "server": server_name,
        "state": key,
        "expiresAt": request.expires_at,
        "price": str(request.price),
        "priceUsd": price_usd,
        "asset": {"address": offer.asset.address, "decimals": decimals, "symbol": offer.asset.symbol},
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
        "words": words,
        "receipt": receipt if request.tx_hash else None,
    }
    minutes = max(0, round((request.expires_at - now) / 60))
    values = {
        "static": f"{prefix}/pay/_static",
        "price_usd": price_usd,
        "tokens": format_amount(request.price, decimals),
        "symbol": offer.asset.symbol,
        "tool": request.tool,
        "server": server_name,
        "description": request.description or request.tool,
        "network_label": offer.network.label,
        "network": request.network,
        "asset_address": offer.asset.address,
        "pay_to": request.pay_to,
        "request_id": request.id,
        "expires_text": f"in about {minutes} minutes" if key == "issued" else "—",
        "money_note": note,
        "state_footer": shown_words["footer"],
        "state": key,
        "state_icon": shown_words["icon"],
        "state_title": shown_words["title"],
        "state_money": shown_words["money"],
        "state_next": shown_words["next"],
        "receipt_amount": receipt["tokens"],
        "receipt_payer": receipt["payer"] or "",
        "receipt_time": _paid_at_text(receipt["paidAt"]),
        "receipt_hidden": "" if request.tx_hash else " hidden",
        "actions_hidden": "" if key == "issued" else " hidden",
        "demo_hidden": "" if demo else " hidden",
    }
    escaped = {key: value if key.endswith("_hidden") else html.escape(value) for key, value in values.items()}
    return Template(asset_text("pay.html")).substitute(
        escaped,
        data_json=_json_for_script(data),
        tx_html=_receipt_html(receipt),
        faucet_html=_faucet_html(faucet),
    )

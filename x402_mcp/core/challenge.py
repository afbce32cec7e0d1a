"""Building the `requirePayment` challenge a paid tool answers with (pure code).

The tool error follows the x402 MCP transport: `isError: true`, `content[0].text`
= the v2 `PaymentRequired` as JSON, and `structuredContent` = the same object,
except for a tool that declares an `outputSchema` (see `fit_output_schema`).
A second text block tells a person the price, what it buys, where to pay and how
to retry; `PaymentRequired.error` says the same in one paragraph, for clients that
show only `content[0]` (fastmcp raises it as the exception message). `_meta`
carries the requirements, the id and the link for toolkit-aware clients.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from mcp_types import CallToolResult, TextContent

from ..errors import ConfigurationError
from .money import format_amount, format_usd
from .networks import Asset, Network, resolve_any_network
from .pricing import REQUEST_ID_ARGUMENT as REQUEST_ID_ARGUMENT  # re-exported: the wire name lives with @paid
from .pricing import PaidTool
from .states import PaymentRequest
from .wire import PaymentRequired, PaymentRequirements, ResourceInfo, SettleResponse

META_PAYMENT = "x402/payment"
META_PAYMENT_RESPONSE = "x402/payment-response"
META_ERROR = "x402/error"
META_REQUEST_ID = "x402-mcp/paymentRequestId"
META_HOSTED_URL = "x402-mcp/hostedUrl"
META_PRICE = "x402-mcp/price"

ResultT = TypeVar("ResultT")


@dataclass(frozen=True, slots=True)
class Offer:
    """Where payments go: the network, the token and the payee."""

    network: Network
    asset: Asset
    pay_to: str
    public_url: str
    other_payees: tuple[tuple[str, str, str], ...] = ()
    """(network, asset, payee) of each other network a payment is accepted on (Solana)."""

    def hosted_url(self, request_id: str) -> str:
        return f"{self.public_url.rstrip('/')}/pay/{request_id}"


def resource_url(tool: str) -> str:
    return f"mcp://tool/{tool}"


def payment_required(
    request: PaymentRequest,
    *,
    error: str | None = None,
    accepts: Sequence[PaymentRequirements] = (),
) -> PaymentRequired:
    """The x402 `PaymentRequired` for `request`, offering `accepts`: every way to pay it, as
    the server's payment schemes offer them (`SchemeRegistry.accepts`; this module names none)."""
    return PaymentRequired(
        error=error or "Payment required",
        resource=ResourceInfo(
            url=resource_url(request.tool), description=request.description, mime_type="application/json"
        ),
        accepts=list(accepts),
    )


def retry_sentence(request: PaymentRequest) -> str:
    """How to get the paid run after paying, for whoever holds `request` (also shown on the page).

    A request bound to a caller (stdio process, `Mcp-Session-Id`, principal) is
    redeemed by a plain retry from that caller; one issued to a caller without an
    identity (stateless HTTP, the 2026-07-28 protocol) only by naming its id.
    """
    argument = f'{REQUEST_ID_ARGUMENT}="{request.id}"'
    if request.caller is None:
        return (
            f"After paying, call {request.tool} again with {argument}: this connection has no "
            "session, so a retry without it gets a new quote."
        )
    return f"After paying, call {request.tool} again (from another client, pass {argument})."


def payment_sentence(request: PaymentRequest, offer: Offer, *, error: str | None = None) -> str:
    """The challenge in one paragraph: price, what it buys, link, how to retry (`PaymentRequired.error`)."""
    price = format_usd(request.price, offer.asset.decimals)
    refused = f"The payment was not accepted: {error.rstrip('. ')}. " if error else ""
    return (
        f"{refused}Payment required: {price} for {request.description or request.tool}. "
        f"{_sentence_after(note_if_test_money(offer.network))}"
        f"Pay at {offer.hosted_url(request.id)}. {retry_sentence(request)}"
    )


def _sentence_after(sentence: str | None) -> str:
    return f"{sentence} " if sentence else ""


def human_text(
    request: PaymentRequest,
    offer: Offer,
    *,
    now: float,
    error: str | None = None,
    other_networks: Sequence[str] = (),
) -> str:
    """What a person (or the LLM relaying to one) needs: price, link, how to retry."""
    price = format_usd(request.price, offer.asset.decimals)
    tokens = format_amount(request.price, offer.asset.decimals, offer.asset.symbol)
    minutes = max(1, round((request.expires_at - now) / 60))
    lines = []
    if error:
        lines.append(f"The payment was not accepted: {error}")
    lines += [
        f"Payment required: {price} ({tokens} on {offer.network.label}) "
        f"for {request.description or request.tool}.",
        f"Pay here: {offer.hosted_url(request.id)}",
        f"{retry_sentence(request)} The link expires in about {minutes} minutes.",
        'Agents with an x402 wallet can instead retry with the payment in _meta["x402/payment"] '
        "(the requirements are the JSON above).",
    ]
    if (test_money := note_if_test_money(offer.network)) is not None:
        lines.insert(1 if error else 0, test_money)
    if other_networks:
        lines.append(f"They may also pay on {', '.join(_label(name) for name in other_networks)}.")
    return "\n".join(lines)


def note_if_test_money(network: Network) -> str | None:
    """The sentence telling a person the price is in test money, or None when it may be real money.

    Said wherever a person reads a price, so a server left on a dev chain (or a testnet)
    never looks, to its author or its buyers, like one selling for real money.
    """
    if network.is_dev_chain:
        return f"This is test money on {network.label}, a development chain: it has no value."
    if network.is_known_testnet:
        return f"This is test money on {network.label}, a test network: it has no value."
    return None


def _label(network: str) -> str:
    try:
        return f"{resolve_any_network(network).label} ({network})"
    except ConfigurationError:
        return network


def challenge_result(
    request: PaymentRequest,
    offer: Offer,
    *,
    now: float,
    error: str | None = None,
    accepts: Sequence[PaymentRequirements] = (),
    code: str | None = None,
) -> CallToolResult:
    """The tool error an unpaid (or wrongly paid) call gets, offering `accepts` (see `payment_required`).

    `code`, when given, is the challenge's `error` in place of the sentence: a reason code
    clients act on (a scheme's corrective answer, e.g. a stale batch-settlement voucher).
    """
    sentence = payment_sentence(request, offer, error=error)
    required = payment_required(request, error=code or sentence, accepts=accepts)
    wire = required.dump()
    others = [entry.network for entry in required.accepts if entry.network != offer.network.caip2]
    text = human_text(request, offer, now=now, error=error, other_networks=others)
    return CallToolResult(
        content=[
            TextContent(type="text", text=json.dumps(wire, separators=(",", ":"))),
            TextContent(type="text", text=text),
        ],
        structured_content=wire,
        is_error=True,
        _meta={
            META_REQUEST_ID: request.id,
            META_HOSTED_URL: offer.hosted_url(request.id),
            # Cloudflare-style clients look for the requirements here.
            META_ERROR: wire,
        },
    )


def failure_result(message: str) -> CallToolResult:
    """A short, honest tool error for crashes (details go to the log, not the caller)."""
    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)


def refund_result(message: str, response: SettleResponse) -> CallToolResult:
    """The answer to a refund a payment asked for (batch-settlement): the tool did not run, so
    it is a tool error (a client checks no output schema against it); the refund's receipt is
    in `_meta["x402/payment-response"]`, as a paid result's is."""
    return CallToolResult(
        content=[TextContent(type="text", text=message)],
        is_error=True,
        _meta={META_PAYMENT_RESPONSE: response.dump()},
    )


def refusal_result(message: str, required: PaymentRequired | None = None) -> CallToolResult:
    """A tool error for a refused payment, with the requirements to pay again when known."""
    if required is None:
        return failure_result(message)
    wire = required.dump()
    return CallToolResult(
        content=[
            TextContent(type="text", text=json.dumps(wire, separators=(",", ":"))),
            TextContent(type="text", text=message),
        ],
        structured_content=wire,
        is_error=True,
        _meta={META_ERROR: wire},
    )


def fit_output_schema(result: ResultT) -> ResultT:
    """A `tools/call` result (serialized, or a `CallToolResult`) of a tool that declares an
    `outputSchema`, as clients that validate it accept it.

    The TypeScript SDK's `callTool` (under Claude Desktop, Cursor, VS Code and the
    Inspector) checks `structuredContent` against the tool's `outputSchema` whenever it
    is present, error or not, and throws instead of showing the challenge. So an error
    loses `structuredContent` and keeps the `PaymentRequired` in `content[0]` and
    `_meta["x402/error"]`, where x402 clients also look; a success is left as it is.
    """
    if isinstance(result, CallToolResult):
        if result.is_error and result.structured_content is not None:
            return cast(ResultT, result.model_copy(update={"structured_content": None}))
    elif isinstance(result, dict) and result.get("isError") and "structuredContent" in result:
        return cast(ResultT, {key: value for key, value in result.items() if key != "structuredContent"})
    return result


def receipt_meta(
    request: PaymentRequest, *, network: str | None = None, response: SettleResponse | None = None
) -> dict[str, object]:
    """`_meta` for a paid result: the x402 settlement response and our id.

    `network` is where the payment settled, when not the request's own network (Solana);
    `response` the receipt its scheme wrote, when it wrote one (a channel's state).
    """
    response = response or SettleResponse(
        success=True,
        transaction=request.tx_hash or "",
        network=network or request.network,
        payer=request.payer,
        amount=str(request.price),
    )
    return {META_PAYMENT_RESPONSE: response.dump(), META_REQUEST_ID: request.id}


def describe_paid_tool(tool: dict[str, Any], spec: PaidTool, offer: Offer) -> None:
    """Advertise a paid tool in its `tools/list` entry: price note, `_meta` price, optional id argument."""
    asset = offer.asset
    if not spec.is_dynamic:
        atomic = spec.atomic_price({}, asset.decimals)
        price: str | None = str(atomic)
        note = f"Paid tool: {format_usd(atomic, asset.decimals)} per call (USDC via x402)."
    elif spec.rule is not None:
        price = None
        note = f"Paid tool: {spec.rule} (USDC via x402; the exact price is quoted when it is called)."
    else:
        price = None
        note = "Paid tool: the price depends on the arguments (USDC via x402)."
    note = f"{note} {_sentence_after(note_if_test_money(offer.network))}".strip()
    tool["description"] = f"{tool.get('description') or ''}\n\n{note}".strip()
    tool["_meta"] = {
        **(tool.get("_meta") or {}),
        META_PRICE: {
            "amount": price,
            "asset": asset.address,
            "network": offer.network.caip2,
            "payTo": offer.pay_to,
            "dynamic": spec.is_dynamic,
            **({"rule": spec.rule} if spec.rule is not None else {}),
            **(
                {
                    "alsoAccepts": [
                        {"network": network, "asset": asset_id, "payTo": payee}
                        for network, asset_id, payee in offer.other_payees
                    ]
                }
                if offer.other_payees
                else {}
            ),
        },
    }
    schema = tool.get("inputSchema")
    if isinstance(schema, dict):
        schema.setdefault("properties", {}).setdefault(
            REQUEST_ID_ARGUMENT,
            {
                "type": "string",
                "description": "Optional: the paymentRequestId of a payment already made for this tool.",
            },
        )

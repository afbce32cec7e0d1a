"""The x402 HTTP resource at the hosted URL: `402` with `PAYMENT-REQUIRED` while a request is
payable, `200` with `PAYMENT-RESPONSE` once a `PAYMENT-SIGNATURE` (or `X-PAYMENT`) pays it,
and the request's state (with its receipt) after that. It pays through the same collector as
the MCP gate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import Response

from ..core.challenge import Offer, payment_required, retry_sentence
from ..core.states import State
from ..core.text import shown
from ..core.wire import ResourceInfo, SettleResponse, encode_header, parse_payment_payload
from ..errors import MalformedPayment, Refused
from ..ledger.base import PaymentRequest
from ..schemes.exact.matching import referenced_request_id
from .ports import PageCollector
from .render import page_state, receipt_fields
from .web import MAX_ERROR_CHARS, PageError, json_response, refusal


class X402Resource:
    """Answers x402 HTTP clients at a hosted URL, for `collector`'s requests at `offer()`'s terms."""

    def __init__(self, collector: PageCollector, offer: Callable[[], Offer]) -> None:
        self.collector = collector
        self.offer = offer

    async def status(self, payment_request: PaymentRequest, resource: str) -> Response:
        now = self.collector.clock()
        if payment_request.state is State.ISSUED and not payment_request.is_expired(now):
            return await self.payment_required(payment_request, None, resource)
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
            return json_response(200, {**body, "next": retry_sentence(payment_request)})
        return json_response(410, {**body, "error": state.detail})

    async def payment_required(
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
        return json_response(402, required.dump(), headers)

    async def pay(self, payment_request: PaymentRequest, header: str, resource: str) -> Response:
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
                return await self.payment_required(
                    current, shown(str(refused.error), MAX_ERROR_CHARS), resource
                )
            return refusal(refused)
        response = SettleResponse(
            success=True,
            transaction=paid.tx_hash or "",
            network=requirements.network,
            payer=paid.payer,
            amount=str(paid.price),
        )
        body = receipt(paid, offer, requirements.network)
        return json_response(200, body, {"PAYMENT-RESPONSE": encode_header(response)})


def receipt(paid: PaymentRequest, offer: Offer, network: str) -> dict[str, Any]:
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

"""The facilitator's Starlette app: `GET /supported`, `POST /verify`, `POST /settle`.

Answers follow the official Python facilitator client's expectations: a payment
that is refused is still a `200` carrying `isValid: false` (or `success: false`)
with a reason code, because that client treats any other status as a transport
failure. A body that is not an x402 request at all gets a `400` naming what is
wrong; a body over the size limit a `413`; a failure of the chain behind us a
`502` with a short message (the cause goes to the log, never RPC URLs or keys).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..errors import ConfigurationError, MalformedPayment, SettlementError
from ..networks import resolve_network
from ..settlement.base import Settlement
from ..wire import (
    AnyPaymentPayload,
    PaymentPayloadV1,
    PaymentRequirements,
    PaymentRequirementsV1,
    SettleResponse,
    SupportedResponse,
    VerifyResponse,
    parse_evm_payment,
    parse_uint,
)

__all__ = ["MAX_BODY_BYTES", "facilitator_app"]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
"""A verify or settle body is a payload plus requirements: a few KiB at most."""

UNSUPPORTED_NETWORK = "invalid_network"


class _BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def facilitator_app(settlement: Settlement, *, max_body_bytes: int = MAX_BODY_BYTES) -> Starlette:
    """A Starlette app serving the x402 facilitator API on top of `settlement`."""
    supported_cache: list[SupportedResponse] = []

    async def supported() -> SupportedResponse:
        if not supported_cache:
            supported_cache.append(await settlement.supported())
        return supported_cache[0]

    async def get_supported(request: Request) -> JSONResponse:
        try:
            return JSONResponse((await supported()).dump())
        except SettlementError as exc:
            return _backend_failed("supported", exc)

    async def post_verify(request: Request) -> JSONResponse:
        try:
            payload, requirements = await _read(request, max_body_bytes)
        except _BadRequest as bad:
            return JSONResponse({"error": str(bad)}, status_code=bad.status)
        payer = payload.payload.authorization.from_
        try:
            if not _serves(await supported(), payload, requirements):
                return JSONResponse(
                    VerifyResponse(
                        is_valid=False,
                        invalid_reason=UNSUPPORTED_NETWORK,
                        invalid_message=f"This facilitator does not settle on {requirements.network}.",
                        payer=payer,
                    ).dump()
                )
            verdict = await settlement.verify(payload, requirements)
        except SettlementError as exc:
            return _backend_failed("verify", exc)
        return JSONResponse(verdict.dump())

    async def post_settle(request: Request) -> JSONResponse:
        try:
            payload, requirements = await _read(request, max_body_bytes)
        except _BadRequest as bad:
            return JSONResponse({"error": str(bad)}, status_code=bad.status)
        network = payload.network if isinstance(payload, PaymentPayloadV1) else requirements.network
        try:
            if not _serves(await supported(), payload, requirements):
                return JSONResponse(
                    SettleResponse(
                        success=False,
                        network=network,
                        payer=payload.payload.authorization.from_,
                        error_reason=UNSUPPORTED_NETWORK,
                        error_message=f"This facilitator does not settle on {requirements.network}.",
                    ).dump()
                )
            receipt = await settlement.settle(payload, requirements)
        except SettlementError as exc:
            return _backend_failed("settle", exc)
        return JSONResponse(receipt.dump())

    return Starlette(
        routes=[
            Route("/supported", get_supported, methods=["GET"]),
            Route("/verify", post_verify, methods=["POST"]),
            Route("/settle", post_settle, methods=["POST"]),
        ]
    )


def _backend_failed(endpoint: str, exc: SettlementError) -> JSONResponse:
    logger.error("facilitator /%s failed in the settlement backend", endpoint, exc_info=exc)
    return JSONResponse({"error": f"the settlement backend failed: {exc}"}, status_code=502)


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and _declared_length(declared) > limit:
        raise _BadRequest(f"the body is {declared} bytes; at most {limit} are accepted", 413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BadRequest(f"the body is larger than {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def _declared_length(declared: str) -> int:
    try:
        return parse_uint(declared, "Content-Length")
    except ValueError:
        raise _BadRequest("the Content-Length header is not a number of bytes") from None


async def _read(request: Request, limit: int) -> tuple[AnyPaymentPayload, PaymentRequirements]:
    """The payload and requirements of a verify or settle body, requirements as v2."""
    raw = await _body(request, limit)
    try:
        body: Any = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _BadRequest(f"the body is not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise _BadRequest("the body must be a JSON object")
    missing = [key for key in ("paymentPayload", "paymentRequirements") if key not in body]
    if missing:
        raise _BadRequest(f"the body has no {' and no '.join(missing)}")
    try:
        payload = parse_evm_payment(body["paymentPayload"])
    except MalformedPayment as exc:
        raise _BadRequest(f"paymentPayload: {exc}") from None
    raw_requirements = body["paymentRequirements"]
    if not isinstance(raw_requirements, dict):
        raise _BadRequest("paymentRequirements must be a JSON object")
    try:
        if isinstance(payload, PaymentPayloadV1):
            return payload, _from_v1(PaymentRequirementsV1.model_validate(raw_requirements))
        return payload, PaymentRequirements.model_validate(raw_requirements)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise _BadRequest(f"paymentRequirements.{where} is invalid: {first['msg']}") from None


def _from_v1(requirements: PaymentRequirementsV1) -> PaymentRequirements:
    try:
        network = resolve_network(requirements.network).caip2
    except ConfigurationError:
        network = requirements.network  # refused below as a network we do not serve
    try:
        parse_uint(requirements.max_amount_required, "paymentRequirements.maxAmountRequired")
    except ValueError as exc:
        raise _BadRequest(str(exc)) from None
    return PaymentRequirements(
        scheme=requirements.scheme,
        network=network,
        amount=requirements.max_amount_required,
        asset=requirements.asset,
        pay_to=requirements.pay_to,
        max_timeout_seconds=requirements.max_timeout_seconds,
        extra=requirements.extra or {},
    )


def _serves(
    supported: SupportedResponse, payload: AnyPaymentPayload, requirements: PaymentRequirements
) -> bool:
    # Lenient on the version: the backend reads v1 and v2 payloads alike, and a chain
    # without a v1 name is still named by its CAIP-2 id in a v1 payload.
    names = {requirements.network, payload.network if isinstance(payload, PaymentPayloadV1) else None}
    return any(kind.scheme == requirements.scheme and kind.network in names for kind in supported.kinds)

"""The facilitator's Starlette app: `GET /supported`, `POST /verify`, `POST /settle`.

Answers follow the official Python facilitator client's expectations: a payment
that is refused is still a `200` carrying `isValid: false` (or `success: false`)
with a reason code, because that client treats any other status as a transport
failure. That includes this facilitator's own policy: a token it does not serve
(`asset_not_allowed`), a payee not on its list (`payee_not_allowed`) and an
amount below its minimum (`amount_below_minimum`). `/settle` verifies the very
body it settles first, so a payment that would revert costs no gas.
A caller without the bearer token gets a `401` (a `403` off loopback when there
is no token, see `access`); a body not sent as JSON a `415`; a body that is not
an x402 request at all a `400` naming what is wrong; a body over the size limit
a `413`; a failure of the chain behind us a `502` with a short message (the cause
goes to the log, never RPC URLs, keys or the token).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, Literal

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ..core.addresses import parse_address
from ..core.networks import Network, resolve_network
from ..core.safejson import UntrustedJsonError, loads_untrusted
from ..core.text import shown
from ..core.wire import (
    AnyPaymentPayload,
    PaymentPayloadV1,
    PaymentRequirements,
    PaymentRequirementsV1,
    SettleResponse,
    SupportedResponse,
    VerifyResponse,
    parse_evm_payment,
    parse_uint,
    validation_error_text,
)
from ..errors import ConfigurationError, MalformedPayment, SettlementError, X402MCPError
from ..page.bodies import BadContentLength, BodyTimeout, BodyTooLarge, read_bounded
from ..settlement.base import Settlement
from ..settlement.checks import Refusal, reported_network
from .access import bearer_matches, is_loopback_host, payee_allowlist, token_problem

__all__ = [
    "AMOUNT_BELOW_MINIMUM",
    "ASSET_NOT_ALLOWED",
    "DEFAULT_MIN_AMOUNT",
    "MAX_BODY_BYTES",
    "PAYEE_NOT_ALLOWED",
    "facilitator_app",
]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
"""A verify or settle body is a payload plus requirements: a few KiB at most."""

DEFAULT_MIN_AMOUNT = 1_000
"""Atomic units ($0.001 of USDC): about what one settlement's gas costs on Base, so a flood
of tiny payments cannot cost the gas account more than it pays."""

UNSUPPORTED_NETWORK = "invalid_network"
PAYEE_NOT_ALLOWED = "payee_not_allowed"
ASSET_NOT_ALLOWED = "asset_not_allowed"
AMOUNT_BELOW_MINIMUM = "amount_below_minimum"


class _BadRequest(X402MCPError):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def facilitator_app(
    settlement: Settlement,
    *,
    token: str | None = None,
    payees: Iterable[str] | None = None,
    assets: Iterable[str] | None = None,
    min_amount: int = DEFAULT_MIN_AMOUNT,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Starlette:
    """A Starlette app serving the x402 facilitator API on top of `settlement`.

    Args:
        token: every request must carry `Authorization: Bearer <token>` (else a
            401). Without a token only loopback clients naming a loopback `Host`
            are served (else a 403): see `access`.
        payees: the only `payTo` addresses it verifies and settles for; None
            means any payee. Anything else is refused with `payee_not_allowed`.
        assets: the token contracts it verifies and settles for; by default the
            USDC of `settlement`'s network. A payment in any other `asset` is refused
            with `asset_not_allowed` before the chain is asked, so nobody can spend
            its gas calling a contract of their choosing.
        min_amount: the smallest amount (atomic units, at least 1) it verifies
            and settles; less is refused with `amount_below_minimum`.

    `/settle` verifies exactly the payment it is asked to settle (its own earlier
    `/verify` of another body proves nothing), and broadcasts only what passes.

    Raises:
        ConfigurationError: a token too short to resist guessing, a payee or asset
            that is not an address, an empty payee or asset list, no asset list for
            a network without a known USDC, or a minimum below 1.
    """
    if token is not None and (problem := token_problem(token)) is not None:
        raise ConfigurationError(problem)
    tokens = _asset_set(assets, settlement)
    allowed = payee_allowlist(payees, tokens=tokens)
    if type(min_amount) is not int or min_amount < 1:
        raise ConfigurationError(
            f"min_amount must be a whole number of atomic units of at least 1, not {min_amount!r}"
        )
    supported_cache: list[SupportedResponse] = []

    async def supported() -> SupportedResponse:
        if not supported_cache:
            supported_cache.append(await settlement.supported())
        return supported_cache[0]

    def refused_access(request: Request) -> JSONResponse | None:
        if token is not None:
            if bearer_matches(request.headers.get("authorization"), token):
                return None
            return JSONResponse(
                {"error": "this facilitator needs 'Authorization: Bearer <token>' (the operator's token)"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="x402 facilitator"'},
            )
        client = request.client.host if request.client is not None else None
        if is_loopback_host(client) and is_loopback_host(request.headers.get("host")):
            return None
        return JSONResponse(
            {"error": "this facilitator has no token, so it serves loopback clients on a loopback host only"},
            status_code=403,
        )

    def policy_refusal(requirements: PaymentRequirements) -> Refusal | None:
        if requirements.asset.lower() not in tokens:
            return Refusal(
                ASSET_NOT_ALLOWED,
                f"This facilitator does not settle payments in {shown(requirements.asset)}; "
                f"it settles {', '.join(sorted(tokens))} only.",
            )
        if allowed is not None and requirements.pay_to.lower() not in allowed:
            return Refusal(
                PAYEE_NOT_ALLOWED,
                f"This facilitator does not settle payments to {shown(requirements.pay_to)}.",
            )
        if parse_uint(requirements.amount, "amount") < min_amount:
            return Refusal(
                AMOUNT_BELOW_MINIMUM,
                f"This facilitator settles {min_amount} atomic units or more; "
                f"{requirements.amount} is below that.",
            )
        return None

    async def get_supported(request: Request) -> JSONResponse:
        refused = refused_access(request)
        if refused is not None:
            return refused
        try:
            return JSONResponse((await supported()).dump())
        except SettlementError as exc:
            return _backend_failed("supported", exc)

    async def answer(request: Request, endpoint: Literal["verify", "settle"]) -> JSONResponse:
        try:
            payload, requirements = await _read(request, max_body_bytes, refused_access)
        except _Refused as refused:
            return refused.response
        except _BadRequest as bad:
            # A stalled body (408): answer, then drop the connection it is still holding.
            close = {"Connection": "close"} if bad.status == 408 else None
            return JSONResponse({"error": str(bad)}, status_code=bad.status, headers=close)
        try:
            refusal = _unserved(await supported(), payload, requirements) or policy_refusal(requirements)
            if refusal is not None:
                return JSONResponse(_refused(endpoint, refusal, payload, requirements).dump())
            verdict = await settlement.verify(payload, requirements)
            if endpoint == "verify":
                return JSONResponse(verdict.dump())
            if not verdict.is_valid:
                # Settle exactly what verifies now: a refusal here spends no gas.
                refusal = Refusal(verdict.invalid_reason or "invalid_payload", verdict.invalid_message or "")
                return JSONResponse(_refused(endpoint, refusal, payload, requirements).dump())
            return JSONResponse((await settlement.settle(payload, requirements)).dump())
        except SettlementError as exc:
            return _backend_failed(endpoint, exc)

    async def post_verify(request: Request) -> JSONResponse:
        return await answer(request, "verify")

    async def post_settle(request: Request) -> JSONResponse:
        return await answer(request, "settle")

    return Starlette(
        routes=[
            Route("/supported", get_supported, methods=["GET"]),
            Route("/verify", post_verify, methods=["POST"]),
            Route("/settle", post_settle, methods=["POST"]),
        ]
    )


def _refused(
    endpoint: Literal["verify", "settle"],
    refusal: Refusal,
    payload: AnyPaymentPayload,
    requirements: PaymentRequirements,
) -> VerifyResponse | SettleResponse:
    payer = payload.payload.authorization.from_
    if endpoint == "verify":
        return VerifyResponse(
            is_valid=False, invalid_reason=refusal.reason, invalid_message=refusal.message, payer=payer
        )
    return SettleResponse(
        success=False,
        network=shown(reported_network(payload, requirements)),  # the caller wrote it
        payer=payer,
        error_reason=refusal.reason,
        error_message=refusal.message,
    )


def _asset_set(assets: Iterable[str] | None, settlement: Settlement) -> frozenset[str]:
    if assets is None:
        network = getattr(settlement, "network", None)
        usdc = network.usdc if isinstance(network, Network) else None
        if usdc is None:
            raise ConfigurationError(
                "name the token contract(s) this facilitator settles for (assets=[...], or --asset): "
                "its settlement backend's network has no known USDC"
            )
        return frozenset({usdc.address.lower()})
    if isinstance(assets, str):
        raise ConfigurationError("assets must be a list of token addresses, not one string")
    listed = [parse_address(asset, what="assets entry") for asset in assets]
    if not listed:
        raise ConfigurationError("assets is empty, so nothing could be settled")
    return frozenset(asset.lower() for asset in listed)


class _Refused(X402MCPError):
    """A request turned away before its body is read (no token, or not JSON)."""

    def __init__(self, response: JSONResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


def _backend_failed(endpoint: str, exc: SettlementError) -> JSONResponse:
    logger.error("facilitator /%s failed in the settlement backend", endpoint, exc_info=exc)
    return JSONResponse({"error": f"the settlement backend failed: {shown(str(exc), 300)}"}, status_code=502)


async def _body(request: Request, limit: int) -> bytes:
    try:
        return await read_bounded(request, limit)
    except BadContentLength:
        raise _BadRequest("the Content-Length header is not a number of bytes") from None
    except BodyTooLarge as large:
        if large.declared is not None:
            raise _BadRequest(
                f"the body is {large.declared} bytes; at most {limit} are accepted", 413
            ) from None
        raise _BadRequest(f"the body is larger than {limit} bytes", 413) from None
    except BodyTimeout as timeout:
        raise _BadRequest(f"{timeout}; send it again", 408) from None


async def _read(
    request: Request, limit: int, refused_access: Callable[[Request], JSONResponse | None]
) -> tuple[AnyPaymentPayload, PaymentRequirements]:
    """The payload and requirements of a verify or settle body, requirements as v2.

    Raises:
        _Refused: the caller may not use the facilitator, or the body is not declared JSON.
        _BadRequest: the body is too large or not an x402 verify/settle request.
    """
    refused = refused_access(request)
    if refused is not None:
        raise _Refused(refused)
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        # A web page can POST text/plain anywhere without asking; it cannot send JSON unasked.
        raise _Refused(JSONResponse({"error": "the body must be sent as application/json"}, status_code=415))
    raw = await _body(request, limit)
    try:
        body: Any = loads_untrusted(raw)
    except UntrustedJsonError as exc:  # not JSON, too deep for the C decoder, an unreadable number
        raise _BadRequest(f"the body is not JSON ({shown(str(exc), 120)})") from None
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
        raise _BadRequest(f"paymentRequirements.{validation_error_text(exc)}") from None


def _from_v1(requirements: PaymentRequirementsV1) -> PaymentRequirements:
    # The v1 model has already read maxAmountRequired with the wire grammar.
    try:
        network = resolve_network(requirements.network).caip2
    except ConfigurationError:
        network = requirements.network  # refused below as a network we do not serve
    return PaymentRequirements(
        scheme=requirements.scheme,
        network=network,
        amount=requirements.max_amount_required,
        asset=requirements.asset,
        pay_to=requirements.pay_to,
        max_timeout_seconds=requirements.max_timeout_seconds,
        extra=requirements.extra or {},
    )


def _unserved(
    supported: SupportedResponse, payload: AnyPaymentPayload, requirements: PaymentRequirements
) -> Refusal | None:
    # Lenient on the version: the backend reads v1 and v2 payloads alike, and a chain
    # without a v1 name is still named by its CAIP-2 id in a v1 payload.
    names = {requirements.network, payload.network if isinstance(payload, PaymentPayloadV1) else None}
    if any(kind.scheme == requirements.scheme and kind.network in names for kind in supported.kinds):
        return None
    return Refusal(
        UNSUPPORTED_NETWORK,
        f"This facilitator does not settle {shown(repr(requirements.scheme))} payments "
        f"on {shown(requirements.network)}.",
    )

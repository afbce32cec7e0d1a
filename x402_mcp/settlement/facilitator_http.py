"""Talking to a facilitator over HTTP: one request, its whole answer bounded in time and size.

Failures become `SettlementError`s that say which; for a `/settle` whose outcome
the answer cannot tell (a timeout after sending, a dropped connection, an answer
too large to read), `OutcomeUnknown` instead, so the caller reconciles on chain
rather than sending it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import anyio
import httpx2
from pydantic import ValidationError

from ..core.text import shown
from ..core.wire import (
    PaymentPayloadV1,
    PaymentRequirements,
    ReceivedPayment,
    SettleResponse,
    SupportedResponse,
    VerifyResponse,
    WireModel,
)
from ..errors import SettlementError
from .facilitator_auth import Endpoint, FacilitatorAuth

__all__ = ["MAX_RESPONSE_BYTES", "FacilitatorHttp", "OutcomeUnknown", "parse_answer", "request_body"]

MAX_RESPONSE_BYTES = 256 * 1024

ResponseT = TypeVar("ResponseT", VerifyResponse, SettleResponse)
ModelT = TypeVar("ModelT", VerifyResponse, SettleResponse, SupportedResponse)


class _TooLarge(SettlementError):
    """The facilitator's answer is over `MAX_RESPONSE_BYTES`; it was not read to the end."""


class OutcomeUnknown(SettlementError):
    """A settle request whose outcome we cannot know from the answer (timeout, 5xx, dropped)."""


class FacilitatorHttp:
    """Requests to the facilitator at `url`, each with `auth`'s headers and `timeout` for its whole answer."""

    def __init__(
        self, url: str, *, auth: FacilitatorAuth | None, timeout: float, client: httpx2.AsyncClient | None
    ) -> None:
        self.url = url
        self._auth = auth
        self._timeout = timeout
        self._client = client
        self._owns_client = client is None

    async def aclose(self) -> None:
        """Close the HTTP client (when it is ours)."""
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = httpx2.AsyncClient(timeout=self._timeout, follow_redirects=False)
        return self._client

    async def send(
        self,
        endpoint: Endpoint,
        method: str,
        body: dict[str, Any] | None,
        *,
        outcome_may_be_unknown: bool = False,
    ) -> httpx2.Response:
        url = f"{self.url}/{endpoint}"
        headers = {"Accept": "application/json"}
        if self._auth is not None:
            headers.update(self._auth.headers(endpoint, method, url))
        try:
            # One deadline for the whole answer, body included: a trickle cannot outlast it.
            with anyio.fail_after(self._timeout + 1):
                return await self._bounded(method, url, body, headers)
        except _TooLarge as exc:
            if outcome_may_be_unknown:
                raise OutcomeUnknown(str(exc)) from exc
            raise SettlementError(f"the facilitator at {self.url} answered /{endpoint} with {exc}") from exc
        except httpx2.ConnectError as exc:
            # The request never left: nothing can have been settled.
            raise SettlementError(
                f"the facilitator at {self.url} is unreachable ({type(exc).__name__})"
            ) from exc
        except (httpx2.TimeoutException, TimeoutError) as exc:
            if outcome_may_be_unknown and not isinstance(exc, httpx2.ConnectTimeout):
                raise OutcomeUnknown(f"no answer within {self._timeout:g} s") from exc
            raise SettlementError(
                f"the facilitator at {self.url} did not answer /{endpoint} within {self._timeout:g} s"
            ) from exc
        except httpx2.HTTPError as exc:
            if outcome_may_be_unknown:
                raise OutcomeUnknown(type(exc).__name__) from exc
            raise SettlementError(
                f"the request to the facilitator at {self.url} failed ({type(exc).__name__})"
            ) from exc

    async def _bounded(
        self, method: str, url: str, body: dict[str, Any] | None, headers: Mapping[str, str]
    ) -> httpx2.Response:
        """The answer, read as it streams in and refused past `MAX_RESPONSE_BYTES` (decoded)."""
        request = self._http().stream(method, url, json=body, headers=headers, timeout=self._timeout)
        async with request as streamed:
            declared = streamed.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
                raise _TooLarge(f"an answer of {declared} bytes (at most {MAX_RESPONSE_BYTES} are read)")
            chunks: list[bytes] = []
            size = 0
            async for chunk in streamed.aiter_bytes():
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise _TooLarge(f"an answer over {MAX_RESPONSE_BYTES} bytes")
                chunks.append(chunk)
        kept = {name: value for name, value in streamed.headers.items() if name.lower() == "content-type"}
        return httpx2.Response(
            streamed.status_code, headers=kept, content=b"".join(chunks), request=streamed.request
        )

    def answer(self, model: type[ResponseT], response: httpx2.Response, endpoint: str) -> ResponseT:
        status = response.status_code
        if status in (401, 403):
            raise SettlementError(
                f"the facilitator at {self.url} refused our credentials for /{endpoint} (HTTP {status})"
            )
        if status == 200 or (400 <= status < 500 and _looks_like(model, response)):
            return parse_answer(model, response, self.url, endpoint)
        raise SettlementError(
            f"the facilitator at {self.url} answered /{endpoint} with HTTP {status}: {_excerpt(response)}"
        )


def request_body(payload: ReceivedPayment, requirements: PaymentRequirements) -> dict[str, Any]:
    """`{x402Version, paymentPayload, paymentRequirements}`, in the payload's own version."""
    if isinstance(payload, PaymentPayloadV1):
        v1_requirements = {
            "scheme": requirements.scheme,
            "network": payload.network,
            "maxAmountRequired": requirements.amount,
            "resource": _v1_resource(requirements),
            "description": "",
            "mimeType": "application/json",
            "payTo": requirements.pay_to,
            "maxTimeoutSeconds": requirements.max_timeout_seconds,
            "asset": requirements.asset,
            "extra": requirements.extra,
        }
        return {"x402Version": 1, "paymentPayload": payload.dump(), "paymentRequirements": v1_requirements}
    return {"x402Version": 2, "paymentPayload": payload.dump(), "paymentRequirements": requirements.dump()}


def _v1_resource(requirements: PaymentRequirements) -> str:
    request_id = requirements.extra.get("paymentRequestId")
    return f"mcp://payment/{request_id}" if isinstance(request_id, str) else "mcp://payment"


def _json(response: httpx2.Response) -> Any:
    if len(response.content) > MAX_RESPONSE_BYTES:
        raise ValueError(f"the answer is {len(response.content)} bytes")
    return response.json()


def _looks_like(model: type[WireModel], response: httpx2.Response) -> bool:
    key = "isValid" if model is VerifyResponse else "success"
    try:
        body = _json(response)
    except ValueError:
        return False
    return isinstance(body, dict) and key in body


def parse_answer(model: type[ModelT], response: httpx2.Response, url: str, endpoint: str) -> ModelT:
    try:
        return model.model_validate(_json(response))
    except (ValueError, ValidationError) as exc:
        raise SettlementError(
            f"the facilitator at {url} answered /{endpoint} with something that is not an x402 "
            f"response: {_excerpt(response)}"
        ) from exc


def _excerpt(response: httpx2.Response, limit: int = 160) -> str:
    return shown(" ".join(response.text[: limit * 4].split()), limit)

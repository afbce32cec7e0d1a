"""Settlement through a remote x402 facilitator over HTTP (`/verify`, `/settle`, `/supported`).

The facilitator holds the gas key and talks to the chain; we send it the payer's
payload and *our* requirements. Its answers come in two shapes and both are
accepted: `200` with `isValid: false` / `success: false`, and a `4xx` whose body
is still a verify or settle response (the TypeScript facilitators do that).
Reason codes are passed through untouched: SDKs spell them differently.

Retries differ on purpose. `verify` moves no money, so a transport failure or a
`5xx` is retried with backoff. `settle` is sent exactly once: a facilitator that
timed out may still broadcast the transfer, so sending it again could only
produce a reverted duplicate (or, on a careless facilitator, burn gas). Instead a
settle whose outcome is unknown is *reconciled*: when an `rpc_url` is configured
`lookup` reads the chain as local settlement does (`authorizationState`, the
`AuthorizationUsed` log, and a successful transaction that logged the transfer
the requirements ask for). Without an RPC, or while the nonce is still unused, the
outcome stays unknown and `settle` raises `SettlementError`; the gate then keeps
the payment request in `settling` with its payload, so nothing is paid twice and
an operator (or a later reconciliation) can resolve it from the chain.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol, TypeVar

import anyio
import anyio.to_thread
import httpx2
from pydantic import ValidationError
from web3 import Web3

from ..core.links import service_url
from ..core.networks import (
    BASE_SEPOLIA,
    SOLANA_DEVNET,
    Network,
    SolanaNetwork,
    resolve_any_network,
    resolve_network,
)
from ..core.text import shown
from ..core.wire import (
    AnyPaymentPayload,
    PaymentPayload,
    PaymentPayloadV1,
    PaymentRequirements,
    ReceivedPayment,
    SettleResponse,
    SupportedKind,
    SupportedResponse,
    VerifyResponse,
    WireModel,
)
from ..errors import ConfigurationError, SettlementError
from .base import OnChain
from .checks import NONCE_ALREADY_USED, reported_network
from .lookup import is_tx_hash, lookup_authorization, settlement_problem
from .relayer import ChainReader

__all__ = [
    "DEFAULT_FACILITATOR_URL",
    "TOKEN_VARIABLE",
    "BearerToken",
    "Endpoint",
    "FacilitatorAuth",
    "FacilitatorSettlement",
    "StaticHeaders",
    "default_settlement",
]

logger = logging.getLogger(__name__)

DEFAULT_FACILITATOR_URL = "https://x402.org/facilitator"
"""The public facilitator; it settles on testnets only (Base Sepolia among them)."""

Endpoint = Literal["verify", "settle", "supported"]

MAX_RESPONSE_BYTES = 256 * 1024
_RETRYABLE_STATUS = frozenset({429, 502, 503, 504})

ResponseT = TypeVar("ResponseT", VerifyResponse, SettleResponse)
ModelT = TypeVar("ModelT", VerifyResponse, SettleResponse, SupportedResponse)
T = TypeVar("T")


class FacilitatorAuth(Protocol):
    """Headers to authenticate one request; called afresh for every request (JWTs expire)."""

    def headers(self, endpoint: Endpoint, method: str, url: str) -> Mapping[str, str]: ...


class StaticHeaders:
    """Fixed headers per endpoint (an API key header, say); `common` goes on every request."""

    def __init__(
        self,
        common: Mapping[str, str] | None = None,
        *,
        verify: Mapping[str, str] | None = None,
        settle: Mapping[str, str] | None = None,
        supported: Mapping[str, str] | None = None,
    ) -> None:
        self._common = dict(common or {})
        self._by_endpoint: dict[str, dict[str, str]] = {
            "verify": dict(verify or {}),
            "settle": dict(settle or {}),
            "supported": dict(supported or {}),
        }

    def headers(self, endpoint: Endpoint, method: str, url: str) -> Mapping[str, str]:
        return {**self._common, **self._by_endpoint[endpoint]}

    def __repr__(self) -> str:
        # Header values are usually secrets: show only which headers are set.
        return f"StaticHeaders(common={sorted(self._common)})"


TOKEN_VARIABLE = "X402_FACILITATOR_TOKEN"
"""Where `x402-mcp facilitator` reads its bearer token, and `BearerToken.from_env` the same."""


class BearerToken:
    """`Authorization: Bearer <token>` on every request: what `x402-mcp facilitator` asks for."""

    def __init__(self, token: str) -> None:
        if not token or not all("!" <= char <= "~" for char in token):
            raise ConfigurationError("a bearer token must be printable ASCII without spaces, and not empty")
        self._token = token

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BearerToken | None:
        """The token in `$X402_FACILITATOR_TOKEN`, or None when it is unset or empty."""
        token = (os.environ if env is None else env).get(TOKEN_VARIABLE, "").strip()
        return cls(token) if token else None

    def headers(self, endpoint: Endpoint, method: str, url: str) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def __repr__(self) -> str:
        return "BearerToken(…)"  # never the token


class _TooLarge(Exception):
    """The facilitator's answer is over `MAX_RESPONSE_BYTES`; it was not read to the end."""


class _Unknown(Exception):
    """A settle request whose outcome we cannot know from the answer (timeout, 5xx, dropped)."""


class FacilitatorSettlement:
    """A `Settlement` backend that delegates to an x402 facilitator.

    Args:
        url: the facilitator's base URL (`/verify` etc. are appended).
        network: the network the server charges on; the facilitator's
            `/supported` is read once, on first use, and must list `exact` on it.
        auth: per-request headers (`CdpAuth` for Coinbase's facilitator).
        token: shorthand for `auth=BearerToken(token)`, the bearer token of a
            facilitator run with `x402-mcp facilitator` (`BearerToken.from_env()`
            reads `$X402_FACILITATOR_TOKEN`).
        timeout: seconds allowed for each request, its whole answer included; an
            answer over 256 KiB is not read (a `SettlementError`, or for `/settle` an
            unknown outcome that keeps the payment pending).
        verify_attempts: how many times a verify is tried on transport errors
            and `429`/`5xx` answers (settle is always tried once).
        rpc_url: a JSON-RPC endpoint of the same chain, used only to read it:
            every successful settle answer is checked against it before the
            tool runs (the transaction succeeded and moved exactly this
            authorization's amount from the payer to the payee), and it serves
            `lookup` and reconciling a settle whose answer was lost (see the
            module docstring). Without it the facilitator's answer is trusted.
        reconcile_seconds: how long to watch the chain for such a settle, or for
            a reported transaction to appear on `rpc_url`'s node.
        client: an `httpx2.AsyncClient` to use (default: one of our own).
    """

    #: How far back (in blocks) `lookup` searches for the transaction that used an authorization.
    lookup_blocks = 100_000

    def __init__(
        self,
        url: str = DEFAULT_FACILITATOR_URL,
        *,
        network: str | Network | SolanaNetwork | None = None,
        auth: FacilitatorAuth | None = None,
        token: str | None = None,
        timeout: float = 15.0,
        verify_attempts: int = 3,
        rpc_url: str | None = None,
        reconcile_seconds: float = 10.0,
        client: httpx2.AsyncClient | None = None,
    ) -> None:
        url = service_url(url, what="the facilitator URL")  # never quoted: it may carry a key
        if verify_attempts < 1:
            raise ConfigurationError("verify_attempts must be at least 1")
        if token is not None:
            if auth is not None:
                raise ConfigurationError("pass either auth= or token=, not both")
            auth = BearerToken(token)
        self.url = url.rstrip("/")
        self.network = resolve_any_network(network) if network is not None else None
        self._auth = auth
        self._timeout = timeout
        self._verify_attempts = verify_attempts
        self._rpc_url = None if rpc_url is None else service_url(rpc_url, what="the RPC URL")
        self._reconcile_seconds = reconcile_seconds
        # Chain readers of `rpc_url`, by network; one worker thread at a time uses them.
        self._readers: dict[str, ChainReader] = {}
        self._lookup_limiter = anyio.CapacityLimiter(1)
        self._client = client
        self._owns_client = client is None
        self._supported: SupportedResponse | None = None
        self._checked: set[str] = set()
        self._supported_lock = anyio.Lock()

    def __repr__(self) -> str:
        network = self.network.caip2 if self.network else None
        return f"FacilitatorSettlement(url={self.url!r}, network={network!r})"

    async def aclose(self) -> None:
        """Close the HTTP client (when it is ours)."""
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None

    # ------------------------------------------------------------------ protocol

    async def supported(self) -> SupportedResponse:
        """The facilitator's `/supported`, read once and remembered.

        Raises:
            SettlementError: the facilitator is unreachable or answers nonsense.
        """
        async with self._supported_lock:
            if self._supported is None:
                response = await self._send("supported", "GET", None)
                if response.status_code in (401, 403):
                    raise SettlementError(
                        f"the facilitator at {self.url} refused our credentials for /supported "
                        f"(HTTP {response.status_code}); check its token or API key"
                    )
                if response.status_code != 200:
                    raise SettlementError(
                        f"the facilitator at {self.url} answered /supported with HTTP {response.status_code}"
                    )
                self._supported = _parse(SupportedResponse, response, self.url, "supported")
            return self._supported

    async def verify(self, payload: ReceivedPayment, requirements: PaymentRequirements) -> VerifyResponse:
        """Ask the facilitator whether `payload` pays `requirements` (retried on transport errors).

        Raises:
            SettlementError: the facilitator is down, timed out, refused our
                credentials, or does not support the network.
        """
        await self._check_supported(requirements)
        body = _request_body(payload, requirements)
        delay = 0.1
        for attempt in range(1, self._verify_attempts + 1):
            try:
                response = await self._send("verify", "POST", body)
            except SettlementError:
                if attempt == self._verify_attempts:
                    raise
            else:
                if response.status_code not in _RETRYABLE_STATUS or attempt == self._verify_attempts:
                    return self._answer(VerifyResponse, response, "verify")
            logger.info("verify at %s failed (attempt %d); retrying", self.url, attempt)
            await anyio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def settle(self, payload: ReceivedPayment, requirements: PaymentRequirements) -> SettleResponse:
        """Ask the facilitator to settle; sent once, reconciled on the chain if the answer is lost.

        Raises:
            SettlementError: the facilitator is down or refused our credentials
                (nothing was settled), or the outcome is unknown (see the module docstring).
        """
        await self._check_supported(requirements)
        body = _request_body(payload, requirements)
        try:
            response = await self._send("settle", "POST", body, outcome_may_be_unknown=True)
            if response.status_code >= 500:
                raise _Unknown(f"HTTP {response.status_code}")
        except _Unknown as unknown:
            settled = await self._reconcile(payload, requirements)
            if settled is not None:
                return settled
            raise SettlementError(
                f"the facilitator at {self.url} gave no settlement answer ({unknown}); the transfer may "
                "still happen, so the payment is kept pending and must not be sent again"
            ) from None
        return await self._confirmed(payload, requirements, self._answer(SettleResponse, response, "settle"))

    async def _confirmed(
        self, payload: ReceivedPayment, requirements: PaymentRequirements, answer: SettleResponse
    ) -> SettleResponse:
        """A successful `answer`, once `rpc_url`'s chain bears it out (see `settlement_problem`).

        Waits up to `reconcile_seconds` for the transaction to appear (the node
        may lag the facilitator's). The answer returned states the amount and
        payer the chain showed, not the facilitator's words.

        Raises:
            SettlementError: the chain does not show that transaction paying this
                authorization; nothing may run on it (reconciliation decides later).
        """
        if not answer.success or not isinstance(payload, PaymentPayload | PaymentPayloadV1):
            return answer
        if not is_tx_hash(answer.transaction):
            # Recorded in the ledger and shown to people: never an arbitrary string.
            raise SettlementError(
                f"the facilitator at {self.url} reported the payment settled, but named no transaction "
                f"hash ({shown(repr(answer.transaction), 80)}); the payment is kept pending until the "
                "chain shows what happened"
            )
        reader = self._reader(requirements)
        if reader is None:
            return answer
        check = functools.partial(settlement_problem, reader, payload, requirements, answer.transaction)
        deadline = anyio.current_time() + self._reconcile_seconds
        delay = 0.05
        while (problem := await self._read_chain(reader, check)) is not None:
            if not problem.pending or anyio.current_time() + delay > deadline:
                logger.error(
                    "the facilitator at %s claimed a settlement the chain disproves: %s",
                    self.url,
                    problem.message,
                )
                raise SettlementError(
                    f"the facilitator at {self.url} reported the payment settled, but the chain disagrees: "
                    f"{problem.message}; the payment is kept pending until the chain shows what happened"
                )
            await anyio.sleep(delay)
            delay = min(delay * 2, 1.0)
        return answer.model_copy(
            update={"amount": requirements.amount, "payer": payload.payload.authorization.from_}
        )

    # ------------------------------------------------------------------ HTTP

    def _http(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = httpx2.AsyncClient(timeout=self._timeout, follow_redirects=False)
        return self._client

    async def _send(
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
                raise _Unknown(str(exc)) from exc
            raise SettlementError(f"the facilitator at {self.url} answered /{endpoint} with {exc}") from exc
        except httpx2.ConnectError as exc:
            # The request never left: nothing can have been settled.
            raise SettlementError(
                f"the facilitator at {self.url} is unreachable ({type(exc).__name__})"
            ) from exc
        except (httpx2.TimeoutException, TimeoutError) as exc:
            if outcome_may_be_unknown and not isinstance(exc, httpx2.ConnectTimeout):
                raise _Unknown(f"no answer within {self._timeout:g} s") from exc
            raise SettlementError(
                f"the facilitator at {self.url} did not answer /{endpoint} within {self._timeout:g} s"
            ) from exc
        except httpx2.HTTPError as exc:
            if outcome_may_be_unknown:
                raise _Unknown(type(exc).__name__) from exc
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

    def _answer(self, model: type[ResponseT], response: httpx2.Response, endpoint: str) -> ResponseT:
        status = response.status_code
        if status in (401, 403):
            raise SettlementError(
                f"the facilitator at {self.url} refused our credentials for /{endpoint} (HTTP {status})"
            )
        if status == 200 or (400 <= status < 500 and _looks_like(model, response)):
            return _parse(model, response, self.url, endpoint)
        raise SettlementError(
            f"the facilitator at {self.url} answered /{endpoint} with HTTP {status}: {_excerpt(response)}"
        )

    async def fee_payer(self, network: str | SolanaNetwork) -> str:
        """The account this facilitator pays Solana fees from on `network` (`extra.feePayer`).

        Raises:
            SettlementError: the facilitator is unreachable, does not settle on
                `network`, or names no fee payer for it.
        """
        kind = await self._supported_kind(network)
        fee_payer = (kind.extra or {}).get("feePayer")
        if not isinstance(fee_payer, str) or not fee_payer:
            raise SettlementError(
                f"the facilitator at {self.url} names no feePayer for {shown(kind.network)} in /supported"
            )
        return fee_payer

    async def _check_supported(self, requirements: PaymentRequirements) -> None:
        if requirements.network not in self._checked:
            await self._supported_kind(requirements.network)
            self._checked.add(requirements.network)

    async def _supported_kind(self, name: str | Network | SolanaNetwork) -> SupportedKind:
        supported = await self.supported()
        try:
            network = resolve_any_network(name)
            caip2, names = network.caip2, {network.caip2, network.v1_name}
        except ConfigurationError:
            caip2 = str(name)
            names = {caip2}
        for kind in supported.kinds:
            if kind.scheme == "exact" and kind.network in names:
                return kind
        offered = shown(
            ", ".join(sorted({f"{k.scheme}@{k.network}" for k in supported.kinds})) or "nothing", 300
        )
        raise SettlementError(
            f"the facilitator at {self.url} does not settle 'exact' payments on {caip2}; "
            f"it supports {offered}"
        )

    # ------------------------------------------------------------------ reconciliation

    async def lookup(self, payload: ReceivedPayment, requirements: PaymentRequirements) -> OnChain:
        """Whether `payload`'s authorization reached the chain, read from `rpc_url`.

        The same lookup as local settlement's (see `lookup_authorization`),
        searching the last `lookup_blocks` blocks. Answers `OnChain("unknown")`
        when this backend cannot read the chain: no `rpc_url`, a Solana network,
        or a payment that is not exact-EVM.

        Raises:
            SettlementError: the node failed or is on another chain, or
                `requirements` are for another network than the configured one.
        """
        if not isinstance(payload, PaymentPayload | PaymentPayloadV1):
            return OnChain("unknown")
        reader = self._reader(requirements)
        if reader is None:
            return OnChain("unknown")
        find = functools.partial(
            lookup_authorization, reader, payload, requirements, lookback_blocks=self.lookup_blocks
        )
        return await self._read_chain(reader, find)

    def _reader(self, requirements: PaymentRequirements) -> ChainReader | None:
        """A reader of `rpc_url` for `requirements`' network; None when it cannot read that chain.

        Raises:
            SettlementError: `requirements` are for another network than the configured one.
        """
        if self._rpc_url is None:
            return None
        network = self.network
        if network is None:
            try:
                network = resolve_network(requirements.network)
            except ConfigurationError:
                return None
        if isinstance(network, SolanaNetwork):
            return None
        if requirements.network != network.caip2:
            raise SettlementError(
                f"this facilitator backend reads {network.caip2}, not {shown(requirements.network)}; "
                "configure a backend for that network"
            )
        reader = self._readers.get(network.caip2)
        if reader is None:
            provider = Web3.HTTPProvider(self._rpc_url, request_kwargs={"timeout": self._timeout})
            reader = self._readers[network.caip2] = ChainReader(Web3(provider), network)
        return reader

    async def _read_chain(self, reader: ChainReader, read: Callable[[], T]) -> T:
        """`read()` of `reader` in a worker thread, one at a time; a node failure becomes SettlementError."""
        try:
            return await anyio.to_thread.run_sync(read, limiter=self._lookup_limiter)
        except SettlementError:
            raise
        except Exception as exc:
            # Generic on purpose: RPC errors often embed the node URL, and hosted URLs carry API keys.
            raise SettlementError(
                f"the {reader.network.label} node failed during a lookup ({type(exc).__name__})"
            ) from exc

    async def _reconcile(
        self, payload: ReceivedPayment, requirements: PaymentRequirements
    ) -> SettleResponse | None:
        """The settlement, if `lookup` shows the authorization used within the watch window."""
        if self._rpc_url is None or not isinstance(payload, PaymentPayload | PaymentPayloadV1):
            return None  # lookup() can only answer "unknown"
        deadline = anyio.current_time() + self._reconcile_seconds
        delay = 0.05
        while True:
            try:
                found = await self.lookup(payload, requirements)
            except SettlementError as exc:
                logger.warning("could not look the authorization up on the chain: %s", exc)
            else:
                if found.status == "unknown":
                    return None  # it cannot change while we watch
                if found.status != "unused":
                    return _settle_response(found, payload, requirements)
            if anyio.current_time() + delay > deadline:
                return None
            await anyio.sleep(delay)
            delay = min(delay * 2, 1.0)


def _settle_response(
    found: OnChain, payload: AnyPaymentPayload, requirements: PaymentRequirements
) -> SettleResponse | None:
    """What the lost settle answer must have said, as the chain shows it; None if it cannot tell."""
    network = reported_network(payload, requirements)
    payer = payload.payload.authorization.from_
    if found.status == "settled" and found.tx_hash is not None and found.amount is not None:
        logger.warning("settle answer lost; the chain shows it settled in %s", found.tx_hash)
        return SettleResponse(
            success=True, transaction=found.tx_hash, network=network, payer=payer, amount=str(found.amount)
        )
    if found.status == "canceled":
        return SettleResponse(
            success=False,
            network=network,
            payer=payer,
            error_reason=NONCE_ALREADY_USED,
            error_message="The payer canceled this authorization; sign a new one.",
        )
    logger.warning("settle answer lost; the authorization was used, but no transaction paying it was found")
    return None


def _request_body(payload: ReceivedPayment, requirements: PaymentRequirements) -> dict[str, Any]:
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


def _parse(model: type[ModelT], response: httpx2.Response, url: str, endpoint: str) -> ModelT:
    try:
        return model.model_validate(_json(response))
    except (ValueError, ValidationError) as exc:
        raise SettlementError(
            f"the facilitator at {url} answered /{endpoint} with something that is not an x402 "
            f"response: {_excerpt(response)}"
        ) from exc


def _excerpt(response: httpx2.Response, limit: int = 160) -> str:
    return shown(" ".join(response.text[: limit * 4].split()), limit)


def default_settlement(network: Network | SolanaNetwork) -> FacilitatorSettlement:
    """The backend used when none is chosen: the public facilitator, for Base Sepolia
    and Solana Devnet only.

    Raises:
        ConfigurationError: for any other network, naming the choices; on a mainnet
            real money moves, so the choice is never made for you.
    """
    if network.caip2 in (BASE_SEPOLIA.caip2, SOLANA_DEVNET.caip2):
        return FacilitatorSettlement(DEFAULT_FACILITATOR_URL, network=network)
    choices = (
        "settlement=cdp_facilitator() (Coinbase's facilitator; needs CDP_API_KEY_ID and CDP_API_KEY_SECRET), "
        "settlement=FacilitatorSettlement(url) (any x402 facilitator, e.g. your own `x402-mcp facilitator`), "
        "or settlement=LocalSettlement.from_rpc(rpc_url, gas_key, network=...) (your own node and gas key)"
    )
    if not network.testnet:
        raise ConfigurationError(f"{network.label} is a mainnet: choose how payments settle: {choices}")
    raise ConfigurationError(f"there is no default settlement backend for {network.caip2}; pass {choices}")

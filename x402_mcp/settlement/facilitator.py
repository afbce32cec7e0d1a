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

import logging

import anyio
import httpx2

from ..core.links import service_url
from ..core.networks import (
    BASE_SEPOLIA,
    SOLANA_DEVNET,
    Network,
    SolanaNetwork,
    resolve_any_network,
)
from ..core.text import shown
from ..core.wire import (
    PaymentRequirements,
    ReceivedPayment,
    SettleResponse,
    SupportedKind,
    SupportedResponse,
    VerifyResponse,
)
from ..errors import ConfigurationError, SettlementError
from .base import OnChain
from .facilitator_auth import TOKEN_VARIABLE, BearerToken, Endpoint, FacilitatorAuth, StaticHeaders
from .facilitator_chain import FacilitatorChain
from .facilitator_http import FacilitatorHttp, OutcomeUnknown, parse_answer, request_body

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

_RETRYABLE_STATUS = frozenset({429, 502, 503, 504})


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
        self._verify_attempts = verify_attempts
        self._http = FacilitatorHttp(self.url, auth=auth, timeout=timeout, client=client)
        checked_rpc_url = None if rpc_url is None else service_url(rpc_url, what="the RPC URL")
        self._chain = FacilitatorChain(
            self.url, checked_rpc_url, self.network, timeout=timeout, reconcile_seconds=reconcile_seconds
        )
        self._supported: SupportedResponse | None = None
        self._checked: set[str] = set()
        self._supported_lock = anyio.Lock()

    def __repr__(self) -> str:
        network = self.network.caip2 if self.network else None
        return f"FacilitatorSettlement(url={self.url!r}, network={network!r})"

    async def aclose(self) -> None:
        """Close the HTTP client (when it is ours)."""
        await self._http.aclose()

    # ------------------------------------------------------------------ protocol

    async def supported(self) -> SupportedResponse:
        """The facilitator's `/supported`, read once and remembered.

        Raises:
            SettlementError: the facilitator is unreachable or answers nonsense.
        """
        async with self._supported_lock:
            if self._supported is None:
                response = await self._http.send("supported", "GET", None)
                if response.status_code in (401, 403):
                    raise SettlementError(
                        f"the facilitator at {self.url} refused our credentials for /supported "
                        f"(HTTP {response.status_code}); check its token or API key"
                    )
                if response.status_code != 200:
                    raise SettlementError(
                        f"the facilitator at {self.url} answered /supported with HTTP {response.status_code}"
                    )
                self._supported = parse_answer(SupportedResponse, response, self.url, "supported")
            return self._supported

    async def verify(self, payload: ReceivedPayment, requirements: PaymentRequirements) -> VerifyResponse:
        """Ask the facilitator whether `payload` pays `requirements` (retried on transport errors).

        Raises:
            SettlementError: the facilitator is down, timed out, refused our
                credentials, or does not support the network.
        """
        await self._check_supported(requirements)
        body = request_body(payload, requirements)
        delay = 0.1
        for attempt in range(1, self._verify_attempts + 1):
            try:
                response = await self._http.send("verify", "POST", body)
            except SettlementError:
                if attempt == self._verify_attempts:
                    raise
            else:
                if response.status_code not in _RETRYABLE_STATUS or attempt == self._verify_attempts:
                    return self._http.answer(VerifyResponse, response, "verify")
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
        body = request_body(payload, requirements)
        try:
            response = await self._http.send("settle", "POST", body, outcome_may_be_unknown=True)
            if response.status_code >= 500:
                raise OutcomeUnknown(f"HTTP {response.status_code}")
        except OutcomeUnknown as unknown:
            settled = await self._chain.reconcile(payload, requirements, lookback_blocks=self.lookup_blocks)
            if settled is not None:
                return settled
            raise SettlementError(
                f"the facilitator at {self.url} gave no settlement answer ({unknown}); the transfer may "
                "still happen, so the payment is kept pending and must not be sent again"
            ) from None
        answer = self._http.answer(SettleResponse, response, "settle")
        return await self._chain.confirmed(payload, requirements, answer)

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
        return await self._chain.lookup(payload, requirements, lookback_blocks=self.lookup_blocks)


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

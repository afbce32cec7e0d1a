"""The official x402 facilitator library (`x402FacilitatorSync`) behind a few lines of Starlette.

It is the interop oracle for our facilitator *client*: real verification and real
settlement on anvil, by Coinbase's own code. `facilitator_routes` serves any official
facilitator (the Solana one in tests/solana/official.py too).
"""

from __future__ import annotations

from typing import Any

from anyio.to_thread import run_sync
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def official_bearer_auth(token: str) -> Any:
    """The official `HTTPFacilitatorClient`'s auth provider sending `Authorization: Bearer <token>`."""
    from x402.http import CreateHeadersAuthProvider

    header = {"Authorization": f"Bearer {token}"}
    return CreateHeadersAuthProvider(lambda: {"verify": header, "settle": header, "supported": header})


def official_facilitator_app(private_key: str, rpc_url: str, network: str) -> Starlette:
    from x402 import x402FacilitatorSync
    from x402.mechanisms.evm import FacilitatorWeb3Signer
    from x402.mechanisms.evm.exact import register_exact_evm_facilitator

    facilitator = register_exact_evm_facilitator(
        x402FacilitatorSync(), FacilitatorWeb3Signer(private_key, rpc_url), networks=network
    )
    return facilitator_routes(facilitator)


def facilitator_routes(facilitator: Any) -> Starlette:
    """GET /supported, POST /verify and /settle over an official `x402FacilitatorSync`."""
    from x402.schemas import PaymentPayload, PaymentRequirements

    def _parse(body: dict[str, Any]) -> tuple[Any, Any]:
        return (
            PaymentPayload.model_validate(body["paymentPayload"]),
            PaymentRequirements.model_validate(body["paymentRequirements"]),
        )

    def _json(model: Any) -> JSONResponse:
        return JSONResponse(model.model_dump(mode="json", by_alias=True, exclude_none=True))

    # Plain functions: Starlette runs them in its thread pool, off the event loop.
    def supported(request: Request) -> JSONResponse:
        return _json(facilitator.get_supported())

    async def verify(request: Request) -> JSONResponse:
        payload, requirements = _parse(await request.json())
        return _json(await run_sync(facilitator.verify, payload, requirements))

    async def settle(request: Request) -> JSONResponse:
        payload, requirements = _parse(await request.json())
        return _json(await run_sync(facilitator.settle, payload, requirements))

    return Starlette(
        routes=[
            Route("/supported", supported, methods=["GET"]),
            Route("/verify", verify, methods=["POST"]),
            Route("/settle", settle, methods=["POST"]),
        ]
    )

"""The facilitator server settles only what it verifies, for the token it serves; its client and the
JSON-RPC reader bound what a counterparty can make them wait for and read.

Real parts throughout: our facilitator app on uvicorn over each chain's local
settlement, real HTTP servers for the misbehaving counterparties.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from eth_account import Account
from hexbytes import HexBytes
from requests.exceptions import ReadTimeout
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from web3 import Web3

from x402_mcp.chains.devchain import TokenChain
from x402_mcp.errors import ConfigurationError, SettlementError
from x402_mcp.facilitator import ASSET_NOT_ALLOWED, facilitator_app
from x402_mcp.settlement import FacilitatorSettlement
from x402_mcp.settlement.bounded import AnswerTooLarge, AnswerTooSlow
from x402_mcp.settlement.checks import INSUFFICIENT_BALANCE, INVALID_SIGNATURE
from x402_mcp.settlement.relayer import ChainReader

from ..chains import AnvilChain, deploy_eip1271_wallet, pay, requirements_for
from ..facilitator.serving import TOKEN, serving
from ..settlement.lying_node import LyingNode

pytestmark = pytest.mark.anyio

PRICE = 10_000
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def _gas_nonce(chain: TokenChain) -> int:
    with chain.lock:
        return chain.w3.eth.get_transaction_count(chain.settlement().signer)


def _body(chain: TokenChain, *, asset: str | None = None, payer_usdc: str = "1") -> dict[str, Any]:
    requirements = requirements_for(chain, Account.create().address, amount=str(PRICE))
    if asset is not None:
        requirements = requirements.model_copy(update={"asset": asset})
    payment = pay(chain.new_account(payer_usdc), requirements)
    return {"x402Version": 2, "paymentPayload": payment.dump(), "paymentRequirements": requirements.dump()}


@pytest.fixture
async def http(chain: TokenChain) -> AsyncIterator[httpx2.AsyncClient]:
    async with (
        serving(facilitator_app(chain.settlement(), token=TOKEN)) as url,
        httpx2.AsyncClient(base_url=url, headers=BEARER) as client,
    ):
        yield client


async def test_a_payment_in_another_contract_is_refused_before_any_gas(
    chain: TokenChain, http: httpx2.AsyncClient
) -> None:
    # Any contract answers the call: this one says yes to everything a token would be asked.
    impostor = deploy_eip1271_wallet(chain, accepts=True)
    before = _gas_nonce(chain)
    body = _body(chain, asset=impostor)

    verified = (await http.post("/verify", json=body)).json()
    settled = (await http.post("/settle", json=body)).json()

    assert (verified["isValid"], verified["invalidReason"]) == (False, ASSET_NOT_ALLOWED)
    assert (settled["success"], settled["errorReason"]) == (False, ASSET_NOT_ALLOWED)
    assert chain.usdc.lower() in settled["errorMessage"].lower()
    assert _gas_nonce(chain) == before, "no transaction was sent"


async def test_settle_verifies_the_very_payload_it_settles(
    chain: TokenChain, http: httpx2.AsyncClient
) -> None:
    good = _body(chain)
    assert (await http.post("/verify", json=good)).json()["isValid"] is True
    before = _gas_nonce(chain)
    broke = _body(chain, payer_usdc="0")  # another payload, whose payer holds nothing
    wallet = deploy_eip1271_wallet(chain, accepts=False)
    refused_signature = _body(chain)
    refused_signature["paymentPayload"]["payload"]["authorization"]["from"] = wallet

    for body, reason in ((broke, INSUFFICIENT_BALANCE), (refused_signature, INVALID_SIGNATURE)):
        settled = (await http.post("/settle", json=body)).json()
        assert (settled["success"], settled["errorReason"]) == (False, reason)
    assert _gas_nonce(chain) == before, "nothing that fails verification is broadcast"
    assert (await http.post("/settle", json=good)).json()["success"] is True
    payee = good["paymentRequirements"]["payTo"]
    assert chain.balance_of(payee) == PRICE


def test_the_served_tokens_default_to_the_networks_usdc_and_are_checked(chain: TokenChain) -> None:
    with pytest.raises(ConfigurationError, match="not an EVM address"):
        facilitator_app(chain.settlement(), assets=["0xnope"])
    with pytest.raises(ConfigurationError, match="assets is empty"):
        facilitator_app(chain.settlement(), assets=[])
    with pytest.raises(ConfigurationError, match="not one string"):
        facilitator_app(chain.settlement(), assets=chain.usdc)
    facilitator_app(chain.settlement(), assets=[chain.usdc.lower()])  # explicit and valid


# --------------------------------------------------------------------------- bounded answers


def _endless(path: str, *, declared: bool) -> Starlette:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"kinds": ['
        for _ in range(64 * 16):  # 64 MiB of it
            yield b" " * 65536

    async def answer(request: Request) -> Response:
        headers = {"Content-Length": str(64 * 1024 * 1024)} if declared else {}
        return StreamingResponse(chunks(), media_type="application/json", headers=headers)

    return Starlette(routes=[Route(f"/{path}", answer, methods=["GET", "POST"])])


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_huge_facilitator_answer_is_a_backend_failure_read_no_further(
    devchain: TokenChain, declared: bool
) -> None:
    async with serving(_endless("supported", declared=declared)) as url:
        remote = FacilitatorSettlement(url, network=devchain.network_info, timeout=5)
        with pytest.raises(SettlementError, match="bytes"):
            await remote.supported()
        await remote.aclose()


@pytest.mark.anvil
async def test_a_huge_settle_answer_is_an_unknown_outcome_never_a_refusal(anvil: AnvilChain) -> None:
    supported = {"kinds": [{"x402Version": 2, "scheme": "exact", "network": anvil.network}]}

    async def get_supported(request: Request) -> Response:
        return Response(json_bytes(supported), media_type="application/json")

    async def huge(request: Request) -> Response:
        return StreamingResponse(_spaces(), media_type="application/json")

    app = Starlette(routes=[Route("/supported", get_supported), Route("/settle", huge, methods=["POST"])])
    requirements = requirements_for(anvil, Account.create().address, amount=str(PRICE))
    async with serving(app) as url:
        remote = FacilitatorSettlement(url, network=anvil.network_info, timeout=5, reconcile_seconds=0.2)
        with pytest.raises(SettlementError, match="may still happen"):
            await remote.settle(pay(anvil.new_account("1"), requirements), requirements)
        await remote.aclose()


async def _spaces() -> AsyncIterator[bytes]:
    yield b'{"success": '
    for _ in range(64 * 16):
        yield b" " * 65536


def json_bytes(value: Any) -> bytes:
    import json

    return json.dumps(value).encode()


@pytest.mark.anvil
@pytest.mark.parametrize("misbehaviour", ["trickle", "huge"])
def test_web3s_own_session_is_bounded_too(anvil: AnvilChain, misbehaviour: str) -> None:
    with LyingNode(anvil.rpc_url, trickle_delay=0.2) as node:
        if misbehaviour == "trickle":
            node.trickle = frozenset({"eth_chainId"})
        else:
            node.huge = frozenset({"eth_chainId"})
        # A request option our own connections do not carry: web3's requests session serves it.
        provider = Web3.HTTPProvider(node.url, request_kwargs={"timeout": 1.0, "verify": True})
        reader = ChainReader(Web3(provider), anvil.network_info)
        began = time.monotonic()
        with pytest.raises(AnswerTooSlow if misbehaviour == "trickle" else AnswerTooLarge):
            reader.ensure_chain()
        assert time.monotonic() - began < 3.5
        assert node.huge_sent < 32 * 1024 * 1024


@pytest.mark.anvil
@pytest.mark.parametrize("misbehaviour", ["trickle", "huge"])
def test_our_own_connections_bound_every_read(anvil: AnvilChain, misbehaviour: str) -> None:
    with LyingNode(anvil.rpc_url, trickle_delay=0.2) as node:
        if misbehaviour == "trickle":
            node.trickle = frozenset({"eth_getTransactionReceipt"})
        else:
            node.huge = frozenset({"eth_getTransactionReceipt"})
        reader = ChainReader(
            Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 1.0})), anvil.network_info
        )
        assert reader._http is not None, "served by our own keep-alive connections"
        began = time.monotonic()
        with pytest.raises(ReadTimeout if misbehaviour == "trickle" else AnswerTooLarge):
            reader.receipt(HexBytes(bytes(32)))
        assert time.monotonic() - began < 2.5

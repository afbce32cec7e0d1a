"""Our facilitator server on each chain: the official `HTTPFacilitatorClient` against it, bad requests."""

from __future__ import annotations

import anyio
import httpx2
import pytest
from eth_account import Account

from x402_mcp.devchain import TokenChain
from x402_mcp.evm import sign_authorization
from x402_mcp.facilitator import MAX_BODY_BYTES
from x402_mcp.settlement.checks import VALUE_MISMATCH
from x402_mcp.wire import PaymentRequired

from ..chains import pay, requirements_for
from .official import official_bearer_auth
from .serving import TOKEN

pytestmark = pytest.mark.anyio

PRICE = 10_000
BEARER = {"Authorization": f"Bearer {TOKEN}"}


async def test_the_official_client_verifies_and_settles_an_official_payment_through_our_server(
    chain: TokenChain, our_facilitator: str
) -> None:
    from x402 import parse_payment_required, x402ClientSync
    from x402.http import FacilitatorConfig, HTTPFacilitatorClient
    from x402.mechanisms.evm import EthAccountSigner
    from x402.mechanisms.evm.exact import ExactEvmClientScheme

    payer, payee = chain.new_account("10"), Account.create().address
    requirements = requirements_for(chain, payee, amount=str(PRICE))
    signer = x402ClientSync()
    signer.register(chain.network, ExactEvmClientScheme(EthAccountSigner(payer)))
    signer.set_spend_controls(False)
    required = parse_payment_required(PaymentRequired(accepts=[requirements]).dump())
    payload = signer.create_payment_payload(required)
    official_requirements = required.accepts[0]

    client = HTTPFacilitatorClient(
        FacilitatorConfig(url=our_facilitator, auth_provider=official_bearer_auth(TOKEN))
    )
    try:
        supported = await anyio.to_thread.run_sync(client.get_supported)
        assert any(k.network == chain.network and k.scheme == "exact" for k in supported.kinds)
        verdict = await client.verify(payload, official_requirements)
        assert verdict.is_valid, verdict.invalid_reason
        assert verdict.payer == payer.address
        assert chain.balance_of(payee) == 0, "verify must not move money"
        receipt = await client.settle(payload, official_requirements)
    finally:
        await client.aclose()
    assert receipt.success, receipt.error_reason
    assert receipt.transaction.startswith("0x")
    assert receipt.network == chain.network
    assert chain.balance_of(payee) == PRICE


async def test_an_invalid_payment_is_a_200_with_its_reason_and_moves_nothing(
    chain: TokenChain, our_facilitator: str
) -> None:
    payer, payee = chain.new_account("10"), Account.create().address
    requirements = requirements_for(chain, payee, amount=str(PRICE))
    underpaid = pay(payer, requirements, value=PRICE - 1)
    body = {"x402Version": 2, "paymentPayload": underpaid.dump(), "paymentRequirements": requirements.dump()}
    async with httpx2.AsyncClient(base_url=our_facilitator, headers=BEARER) as http:
        verify = await http.post("/verify", json=body)
        settle = await http.post("/settle", json=body)
    assert verify.status_code == settle.status_code == 200
    assert verify.json()["isValid"] is False
    assert verify.json()["invalidReason"] == VALUE_MISMATCH
    assert settle.json()["success"] is False
    assert settle.json()["errorReason"] == VALUE_MISMATCH
    assert chain.balance_of(payee) == 0


async def test_a_v1_body_verifies_and_settles(chain: TokenChain, our_facilitator: str) -> None:
    payer, payee = chain.new_account("10"), Account.create().address
    requirements = requirements_for(chain, payee, amount=str(PRICE))
    body = {
        "x402Version": 1,
        "paymentPayload": {
            "x402Version": 1,
            "scheme": "exact",
            "network": chain.network,
            "payload": sign_authorization(payer, requirements).dump(),
        },
        "paymentRequirements": {
            "scheme": "exact",
            "network": chain.network,
            "maxAmountRequired": str(PRICE),
            "resource": "mcp://tool/x",
            "payTo": payee,
            "maxTimeoutSeconds": 300,
            "asset": chain.usdc,
            "extra": requirements.extra,
        },
    }
    async with httpx2.AsyncClient(base_url=our_facilitator, headers=BEARER) as http:
        assert (await http.post("/verify", json=body)).json()["isValid"] is True
        settled = (await http.post("/settle", json=body)).json()
    assert settled["success"] is True, settled
    assert chain.balance_of(payee) == PRICE


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"not json", 400, "not JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"paymentPayload": {}}', 400, "no paymentRequirements"),
        (b'{"paymentPayload": {"x402Version": 7}, "paymentRequirements": {}}', 400, "x402Version"),
        (b"{" + b" " * (MAX_BODY_BYTES + 1) + b"}", 413, "at most"),
    ],
)
async def test_malformed_bodies_get_a_clear_4xx(
    chain: TokenChain, our_facilitator: str, body: bytes, status: int, needle: str
) -> None:
    async with httpx2.AsyncClient(base_url=our_facilitator, headers=BEARER) as http:
        for endpoint in ("/verify", "/settle"):
            response = await http.post(endpoint, content=body, headers={"content-type": "application/json"})
            assert response.status_code == status
            assert needle in response.json()["error"]


async def test_requirements_for_another_network_are_refused_as_unsupported(
    chain: TokenChain, our_facilitator: str
) -> None:
    payer, payee = chain.new_account("10"), Account.create().address
    requirements = requirements_for(chain, payee, amount=str(PRICE)).model_copy(
        update={"network": "eip155:999"}
    )
    payment = pay(payer, requirements)
    body = {"x402Version": 2, "paymentPayload": payment.dump(), "paymentRequirements": requirements.dump()}
    async with httpx2.AsyncClient(base_url=our_facilitator, headers=BEARER) as http:
        verify = (await http.post("/verify", json=body)).json()
        settle = (await http.post("/settle", json=body)).json()
    assert (verify["isValid"], verify["invalidReason"]) == (False, "invalid_network")
    assert (settle["success"], settle["errorReason"]) == (False, "invalid_network")

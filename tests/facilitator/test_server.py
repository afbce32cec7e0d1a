"""Our facilitator server on each chain: the official `HTTPFacilitatorClient` against it, bad requests."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx2
import pytest
from eth_account import Account

from x402_mcp.chains.devchain import TokenChain
from x402_mcp.core.evm import sign_authorization
from x402_mcp.core.wire import PaymentRequired
from x402_mcp.errors import ConfigurationError
from x402_mcp.facilitator import AMOUNT_BELOW_MINIMUM, MAX_BODY_BYTES, PAYEE_NOT_ALLOWED, facilitator_app
from x402_mcp.settlement.checks import INVALID_SIGNATURE, VALUE_MISMATCH

from ..chains import pay, requirements_for
from ..hostile import changed
from .official import official_bearer_auth
from .serving import TOKEN, serving

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


# --------------------------------------------------------------------------- hostile bodies


def _v2_body(chain: TokenChain, payee: str | None = None, amount: int = PRICE) -> dict[str, Any]:
    requirements = requirements_for(chain, payee or Account.create().address, amount=str(amount))
    payment = pay(chain.new_account("1"), requirements)
    return {"x402Version": 2, "paymentPayload": payment.dump(), "paymentRequirements": requirements.dump()}


HOSTILE_NUMBERS = ["²", "５００００", "050000", str(2**256), "-1", True, 1.5, 10000]
AUTHORIZATION = ("paymentPayload", "payload", "authorization")


@pytest.mark.parametrize("value", HOSTILE_NUMBERS, ids=repr)
@pytest.mark.parametrize(
    "path",
    [
        ("paymentPayload", "accepted", "amount"),
        ("paymentRequirements", "amount"),
        (*AUTHORIZATION, "value"),
        (*AUTHORIZATION, "validAfter"),
        (*AUTHORIZATION, "validBefore"),
    ],
    ids=lambda path: ".".join(path[-2:]),
)
async def test_hostile_integers_are_a_named_400_never_a_500_or_a_payment(
    chain: TokenChain, our_facilitator: str, path: tuple[str, ...], value: object
) -> None:
    body = changed(_v2_body(chain), path, value)
    payee = body["paymentRequirements"]["payTo"]
    async with httpx2.AsyncClient(base_url=our_facilitator, headers=BEARER) as http:
        for endpoint in ("/verify", "/settle"):
            response = await http.post(endpoint, json=body)
            assert response.status_code == 400, response.text
            assert path[-1] in response.json()["error"]
    assert chain.balance_of(payee) == 0


@pytest.mark.parametrize("value", ["600", 600.0, True, 0, -1, 2**31, 2**300], ids=repr)
async def test_max_timeout_seconds_must_be_a_bounded_positive_json_integer(
    chain: TokenChain, our_facilitator: str, value: object
) -> None:
    body = changed(_v2_body(chain), ("paymentRequirements", "maxTimeoutSeconds"), value)
    async with httpx2.AsyncClient(base_url=our_facilitator, headers=BEARER) as http:
        response = await http.post("/settle", json=body)
    assert response.status_code == 400
    assert "paymentRequirements.maxTimeoutSeconds is invalid" in response.json()["error"]


@pytest.mark.parametrize("value", ["５００００", "050000", "²", str(2**256), 10000], ids=repr)
async def test_a_v1_max_amount_required_has_the_same_grammar(
    chain: TokenChain, our_facilitator: str, value: object
) -> None:
    payer, payee = chain.new_account("1"), Account.create().address
    requirements = requirements_for(chain, payee, amount=str(PRICE))
    body = {
        "x402Version": 1,
        "paymentPayload": {
            "x402Version": 1, "scheme": "exact", "network": chain.network,
            "payload": sign_authorization(payer, requirements).dump(),
        },
        "paymentRequirements": {
            "scheme": "exact", "network": chain.network, "maxAmountRequired": value, "resource": "mcp://tool/x",
            "payTo": payee, "maxTimeoutSeconds": 300, "asset": chain.usdc, "extra": requirements.extra,
        },
    }  # fmt: skip
    async with httpx2.AsyncClient(base_url=our_facilitator, headers=BEARER) as http:
        response = await http.post("/settle", json=body)
    assert response.status_code == 400
    assert "maxAmountRequired" in response.json()["error"]
    assert chain.balance_of(payee) == 0


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ((*AUTHORIZATION, "from"), "0xnot-an-address"),
        ((*AUTHORIZATION, "nonce"), "0x" + "ab" * 31 + "a_"),
        ((*AUTHORIZATION, "validBefore"), str(2**256 + 1)),
        (("paymentPayload", "payload", "signature"), "0x" + "1" * 129),
        (("paymentPayload", "payload", "signature"), "0xgarbage"),
        (("paymentPayload", "x402Version"), 2.0),
    ],
    ids=lambda value: ".".join(value[-2:]) if isinstance(value, tuple) else repr(value)[:16],
)
async def test_malformed_payload_fields_are_a_named_400(
    chain: TokenChain, our_facilitator: str, path: tuple[str, ...], value: object
) -> None:
    body = changed(_v2_body(chain), path, value)
    async with httpx2.AsyncClient(base_url=our_facilitator, headers=BEARER) as http:
        for endpoint in ("/verify", "/settle"):
            response = await http.post(endpoint, json=body)
            assert response.status_code == 400
            assert path[-1] in response.json()["error"]


async def test_a_65_byte_signature_with_a_bad_v_is_refused_by_name(
    chain: TokenChain, our_facilitator: str
) -> None:
    body = _v2_body(chain)
    signature = body["paymentPayload"]["payload"]["signature"]
    body = changed(body, ("paymentPayload", "payload", "signature"), signature[:-2] + "1d")
    async with httpx2.AsyncClient(base_url=our_facilitator, headers=BEARER) as http:
        verify = (await http.post("/verify", json=body)).json()
        settle = (await http.post("/settle", json=body)).json()
    assert (verify["isValid"], verify["invalidReason"]) == (False, INVALID_SIGNATURE)
    assert "v=29" in verify["invalidMessage"]
    assert (settle["success"], settle["errorReason"]) == (False, INVALID_SIGNATURE)
    assert chain.balance_of(body["paymentRequirements"]["payTo"]) == 0


async def test_a_number_too_long_for_python_is_a_400(our_facilitator: str) -> None:
    body = b'{"paymentPayload": {"x402Version": 1' + b"0" * 5000 + b'}, "paymentRequirements": {}}'
    async with httpx2.AsyncClient(base_url=our_facilitator, headers=BEARER) as http:
        response = await http.post("/verify", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "not JSON" in response.json()["error"]


async def test_outside_text_in_an_answer_is_neutralised(chain: TokenChain, our_facilitator: str) -> None:
    hostile = "eip155:1\u202e" + "7" * 1000
    body = changed(_v2_body(chain), ("paymentRequirements", "network"), hostile)
    async with httpx2.AsyncClient(base_url=our_facilitator, headers=BEARER) as http:
        answers = [await http.post("/verify", json=body), await http.post("/settle", json=body)]
    for answer in answers:
        assert answer.status_code == 200
        assert "\u202e" not in answer.text and "\\u202e" in answer.text
        assert len(answer.text) < 1000


# --------------------------------------------------------------------------- who may use it


async def test_without_the_token_every_endpoint_is_a_401(chain: TokenChain, our_facilitator: str) -> None:
    body = _v2_body(chain)
    wrong = [
        {},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ]
    async with httpx2.AsyncClient(base_url=our_facilitator) as http:
        for headers in wrong:
            for response in (
                await http.get("/supported", headers=headers),
                await http.post("/verify", json=body, headers=headers),
                await http.post("/settle", json=body, headers=headers),
            ):
                assert response.status_code == 401
                assert "Authorization: Bearer" in response.json()["error"]
                assert response.headers["www-authenticate"].startswith("Bearer")
                assert TOKEN not in response.text
    assert chain.balance_of(body["paymentRequirements"]["payTo"]) == 0


async def test_a_body_not_sent_as_json_is_a_415(chain: TokenChain, our_facilitator: str) -> None:
    # What a web page can send to any address without asking first.
    body = json.dumps(_v2_body(chain)).encode()
    async with httpx2.AsyncClient(base_url=our_facilitator, headers=BEARER) as http:
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
            response = await http.post("/settle", content=body, headers={"content-type": content_type})
            assert response.status_code == 415
            assert "application/json" in response.json()["error"]
        charset = await http.post(
            "/verify", content=body, headers={"content-type": "application/json; charset=utf-8"}
        )
    assert charset.status_code == 200


async def test_without_a_token_only_loopback_clients_naming_a_loopback_host_are_served(
    chain: TokenChain,
) -> None:
    app = facilitator_app(chain.settlement())
    async with serving(app) as url, httpx2.AsyncClient(base_url=url) as http:
        assert (await http.get("/supported")).status_code == 200
        assert (await http.get("/supported", headers={"host": "localhost:8403"})).status_code == 200
        rebound = await http.get("/supported", headers={"host": "attacker.example:8403"})
    assert rebound.status_code == 403
    assert "loopback" in rebound.json()["error"]
    remote = httpx2.ASGITransport(app=app, client=("203.0.113.9", 40000))
    async with httpx2.AsyncClient(transport=remote, base_url="http://127.0.0.1:8403") as http:
        assert (await http.get("/supported")).status_code == 403
        assert (await http.post("/settle", json=_v2_body(chain))).status_code == 403


async def test_only_allowlisted_payees_at_the_minimum_or_more_are_settled(chain: TokenChain) -> None:
    ours, other = Account.create().address, Account.create().address
    app = facilitator_app(chain.settlement(), token=TOKEN, payees=[ours.lower()], min_amount=PRICE)
    async with serving(app) as url, httpx2.AsyncClient(base_url=url, headers=BEARER) as http:
        stranger = _v2_body(chain, other)
        cheap = _v2_body(chain, ours, amount=PRICE - 1)
        for endpoint, key, reason_key in (
            ("/verify", "isValid", "invalidReason"),
            ("/settle", "success", "errorReason"),
        ):
            answer = (await http.post(endpoint, json=stranger)).json()
            assert (answer[key], answer[reason_key]) == (False, PAYEE_NOT_ALLOWED)
            answer = (await http.post(endpoint, json=cheap)).json()
            assert (answer[key], answer[reason_key]) == (False, AMOUNT_BELOW_MINIMUM)
            assert str(PRICE) in answer["invalidMessage" if key == "isValid" else "errorMessage"]
        good = (await http.post("/settle", json=_v2_body(chain, ours))).json()
    assert good["success"] is True, good
    assert chain.balance_of(other) == 0
    assert chain.balance_of(ours) == PRICE


async def test_a_zero_value_transfer_between_strangers_is_refused_by_default(chain: TokenChain) -> None:
    app = facilitator_app(chain.settlement(), token=TOKEN)
    async with serving(app) as url, httpx2.AsyncClient(base_url=url, headers=BEARER) as http:
        answer = (await http.post("/settle", json=_v2_body(chain, amount=0))).json()
    assert (answer["success"], answer["errorReason"]) == (False, AMOUNT_BELOW_MINIMUM)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"token": "short"}, "at least 16"),
        ({"payees": []}, "payees is empty"),
        ({"payees": "0x" + "1" * 40}, "not one string"),
        ({"payees": ["0xnope"]}, "is not an EVM address"),
        ({"min_amount": 0}, "at least 1"),
        ({"min_amount": True}, "at least 1"),
    ],
)
def test_a_bad_policy_is_a_configuration_error(
    chain: TokenChain, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        facilitator_app(chain.settlement(), **options)

import base64
import json

import pytest

from x402_mcp.errors import MalformedPayment
from x402_mcp.wire import (
    PaymentPayload,
    PaymentPayloadV1,
    PaymentRequired,
    PaymentRequirements,
    SettleResponse,
    decode_header,
    encode_header,
    parse_payment_payload,
    parse_uint,
)

AUTHORIZATION = {
    "from": "0x857b06519E91e3A54538791bDbb0E22373e36b66",
    "to": "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
    "value": "10000",
    "validAfter": "1740672089",
    "validBefore": "1740672154",
    "nonce": "0x" + "ab" * 32,
}
REQUIREMENTS = {
    "scheme": "exact",
    "network": "eip155:84532",
    "amount": "10000",
    "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
    "payTo": AUTHORIZATION["to"],
    "maxTimeoutSeconds": 60,
    "extra": {"name": "USDC", "version": "2"},
}
V2 = {
    "x402Version": 2,
    "accepted": REQUIREMENTS,
    "payload": {"signature": "0x" + "11" * 65, "authorization": AUTHORIZATION},
}


def test_v2_round_trips_in_camel_case_without_nulls() -> None:
    payload = parse_payment_payload(V2)
    assert isinstance(payload, PaymentPayload)
    assert payload.payload.authorization.from_ == AUTHORIZATION["from"]
    assert payload.dump() == V2


def test_v1_payloads_are_read() -> None:
    v1 = {"x402Version": 1, "scheme": "exact", "network": "base-sepolia", "payload": V2["payload"]}
    payload = parse_payment_payload(json.dumps(v1))
    assert isinstance(payload, PaymentPayloadV1)
    assert payload.network == "base-sepolia"


def test_json_string_and_base64_forms_are_accepted() -> None:
    text = json.dumps(V2)
    assert parse_payment_payload(text) == parse_payment_payload(base64.b64encode(text.encode()).decode())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["accepted"].update(amount=10000), "amount"),
        (lambda d: d["payload"]["authorization"].update(nonce="0x12"), "nonce"),
        (lambda d: d["payload"].update(signature="zz"), "signature"),
        (lambda d: d["payload"]["authorization"].update(value="-5"), "value"),
        (lambda d: d.pop("accepted"), "accepted"),
    ],
)
def test_invalid_fields_are_named(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(json.dumps(V2))
    mutate(data)
    with pytest.raises(MalformedPayment, match=message):
        parse_payment_payload(data)


def test_required_and_headers() -> None:
    required = PaymentRequired(accepts=[PaymentRequirements.model_validate(REQUIREMENTS)])
    assert required.dump() == {"x402Version": 2, "accepts": [REQUIREMENTS]}
    response = SettleResponse(success=True, transaction="0xabc", network="eip155:84532")
    assert decode_header(encode_header(response)) == {
        "success": True,
        "transaction": "0xabc",
        "network": "eip155:84532",
    }


@pytest.mark.parametrize(
    "text", ["²", "５００００", "050000", "-1", "+1", "1_000", " 1", "1.0", "", str(2**256)]
)
def test_wire_integers_have_one_canonical_ascii_grammar(text: str) -> None:
    with pytest.raises(ValueError, match="amount"):
        parse_uint(text, "amount")


def test_wire_integers_up_to_uint256_are_read() -> None:
    assert parse_uint("0") == 0
    assert parse_uint(str(2**256 - 1)) == 2**256 - 1

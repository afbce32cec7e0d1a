import base64
import json
import random
import re

import pytest
from pydantic import ValidationError

from tests.hostile import changed
from x402_mcp.core.wire import (
    MAX_TIMEOUT_SECONDS,
    PaymentPayload,
    PaymentPayloadV1,
    PaymentRequired,
    PaymentRequirements,
    PaymentRequirementsV1,
    SettleResponse,
    VerifyResponse,
    decode_header,
    encode_header,
    hex_bytes,
    parse_payment_payload,
    parse_uint,
)
from x402_mcp.errors import MalformedPayment

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


# --------------------------------------------------------------------------- hostile fields

HOSTILE_INTEGERS = [
    "²",
    "５００００",
    "050000",
    "-1",
    "1_000",
    " 1",
    "1e3",
    str(2**256),
    "",
    10000,
    1.5,
    True,
    None,
]


def _with(path: tuple[str, ...], value: object) -> dict[str, object]:
    return changed(V2, path, value)


@pytest.mark.parametrize("value", HOSTILE_INTEGERS, ids=repr)
@pytest.mark.parametrize(
    "path",
    [
        ("accepted", "amount"),
        ("payload", "authorization", "value"),
        ("payload", "authorization", "validAfter"),
        ("payload", "authorization", "validBefore"),
    ],
    ids=lambda path: path[-1],
)
def test_every_wire_integer_has_the_canonical_grammar(path: tuple[str, ...], value: object) -> None:
    with pytest.raises(MalformedPayment, match=path[-1]) as refused:
        parse_payment_payload(_with(path, value))
    assert refused.value.reason == "invalid_payload"


@pytest.mark.parametrize("value", ["600", 600.0, True, 0, -5, 2**31, 2**300], ids=repr)
def test_max_timeout_seconds_is_a_strict_bounded_positive_integer(value: object) -> None:
    with pytest.raises(MalformedPayment, match="maxTimeoutSeconds"):
        parse_payment_payload(_with(("accepted", "maxTimeoutSeconds"), value))
    with pytest.raises(ValidationError, match="maxTimeoutSeconds"):
        PaymentRequirements.model_validate({**REQUIREMENTS, "maxTimeoutSeconds": value})


def test_the_longest_max_timeout_is_accepted() -> None:
    assert (
        PaymentRequirements.model_validate(
            {**REQUIREMENTS, "maxTimeoutSeconds": MAX_TIMEOUT_SECONDS}
        ).max_timeout_seconds
        == MAX_TIMEOUT_SECONDS
    )


@pytest.mark.parametrize("version", [2.0, True, "2", 3, None], ids=repr)
def test_the_version_is_the_json_integer_itself(version: object) -> None:
    with pytest.raises(MalformedPayment, match="x402Version") as refused:
        parse_payment_payload(_with(("x402Version",), version))
    assert refused.value.reason == "invalid_x402_version"


def test_v1_requirements_read_max_amount_required_with_the_same_grammar() -> None:
    v1 = {
        "scheme": "exact",
        "network": "base-sepolia",
        "maxAmountRequired": "10000",
        "resource": "mcp://tool/x",
        "payTo": AUTHORIZATION["to"],
        "maxTimeoutSeconds": 60,
        "asset": REQUIREMENTS["asset"],
    }
    assert PaymentRequirementsV1.model_validate(v1).max_amount_required == "10000"
    for bad in ["５００００", "050000", "²", str(2**256), 10000]:
        with pytest.raises(ValidationError, match="maxAmountRequired"):
            PaymentRequirementsV1.model_validate({**v1, "maxAmountRequired": bad})
    with pytest.raises(ValidationError, match="maxTimeoutSeconds"):
        PaymentRequirementsV1.model_validate({**v1, "maxTimeoutSeconds": "60"})


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("payload", "authorization", "from"), "0xnot-an-address"),
        (("payload", "authorization", "from"), "0x" + "1" * 39),
        (("payload", "authorization", "to"), AUTHORIZATION["to"] + " "),
        (("payload", "authorization", "nonce"), "0x" + "ab" * 31 + "a_"),
        (("payload", "authorization", "nonce"), "0x" + "ab" * 30 + "_a_b"),
        (("payload", "signature"), "0x" + "1" * 129),  # odd length
        (("payload", "signature"), "0xzz" + "11" * 64),
        (("payload", "signature"), "0x"),
        (("payload", "signature"), "0x11 22"),
    ],
    ids=lambda value: value[-1] if isinstance(value, tuple) else repr(value)[:20],
)
def test_malformed_fields_are_refused_by_name(path: tuple[str, ...], value: str) -> None:
    with pytest.raises(MalformedPayment, match=path[-1]):
        parse_payment_payload(_with(path, value))


def test_a_number_too_long_for_python_is_malformed_not_a_crash() -> None:
    text = json.dumps(V2).replace('"maxTimeoutSeconds": 60', '"maxTimeoutSeconds": 1' + "0" * 5000)
    with pytest.raises(MalformedPayment, match="integer of 5001 digits; at most 4300"):
        parse_payment_payload(text)
    huge = _with(("accepted", "maxTimeoutSeconds"), 10**5000)
    with pytest.raises(MalformedPayment, match="plain JSON"):
        parse_payment_payload(huge)


@pytest.mark.parametrize("depth", [65, 7000])
def test_a_payment_nested_too_deep_is_malformed_not_a_crash(depth: int) -> None:
    # py-evm raises the recursion limit to 100,000: the C decoder would overflow the stack.
    text = json.dumps(V2)[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"
    with pytest.raises(MalformedPayment, match="nests more than 64 levels deep"):
        parse_payment_payload(text)


def test_outside_text_in_a_refusal_is_neutralised() -> None:
    with pytest.raises(MalformedPayment) as refused:
        parse_payment_payload(_with(("x402Version",), "2\u202e" + "x" * 500))
    assert "\u202e" not in str(refused.value)
    assert "\\u202e" in str(refused.value)
    assert len(str(refused.value)) < 200


def test_facilitator_answers_are_strict_too() -> None:
    with pytest.raises(ValidationError):
        VerifyResponse.model_validate({"isValid": "true"})
    with pytest.raises(ValidationError):
        SettleResponse.model_validate({"success": 1, "network": "eip155:84532"})
    with pytest.raises(ValidationError, match="amount"):
        SettleResponse.model_validate({"success": True, "network": "eip155:84532", "amount": "050000"})
    assert SettleResponse.model_validate({"success": True, "network": "n", "amount": ""}).amount is None
    assert SettleResponse.model_validate({"success": True, "network": "n", "amount": "7"}).amount == "7"


@pytest.mark.parametrize("encoded", [True, False])
def test_a_payment_holding_a_lone_surrogate_is_refused_by_name(encoded: bool) -> None:
    text = '{"x402Version": 2, "accepted": {"extra": {"paymentRequestId": "\\ud800"}}}'
    raw: object = text if encoded else json.loads(text)
    with pytest.raises(MalformedPayment, match="lone surrogate"):
        parse_payment_payload(raw)


# ------------------------------------------------- the regex-free readers keep the grammar

_REFERENCE_UINT = re.compile(r"0|[1-9][0-9]*")
_REFERENCE_HEX = re.compile(r"0x(?:[0-9a-fA-F]{2})+")
_ALPHABET = "0123456789abcdefABCDEFxX \t\n\r\x0b\x0c_-+.²٣５\u00a0g"


def _reference_parse_uint(value: object) -> int | None:
    if not isinstance(value, str) or len(value) > 78 or _REFERENCE_UINT.fullmatch(value) is None:
        return None
    number = int(value)
    return number if number < 2**256 else None


def _reference_hex_bytes(value: object) -> bytes | None:
    if not isinstance(value, str) or _REFERENCE_HEX.fullmatch(value) is None:
        return None
    return bytes.fromhex(value[2:])


def _strings(rng: random.Random) -> list[object]:
    values: list[object] = [None, 0, 1, b"0x00", "", "0", "00", "0x", "0x0", "0x00", "0X00", " 0x00", "0x00 "]
    values += ["0x" + "ab" * n for n in range(4)] + ["0x" + "ab cd", "0xab\ncd", "0x ab", "0xabc d"]
    values += [str(2**256 - 1), str(2**256), "1" * 78, "1" * 79, "0" * 78, "9" * 78]
    for _ in range(5000):
        length = rng.randrange(0, 12)
        body = "".join(rng.choice(_ALPHABET) for _ in range(length))
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randrange(1, 80)))
        pairs = rng.randbytes(rng.randrange(1, 40)).hex()
        values += [body, "0x" + body, digits, "0x" + pairs, "0x" + pairs.upper(), "0x" + pairs[:-1]]
    return values


def test_parse_uint_reads_exactly_the_canonical_grammar() -> None:
    for value in _strings(random.Random(256)):
        expected = _reference_parse_uint(value)
        if expected is None:
            with pytest.raises(ValueError, match="the thing"):
                parse_uint(value, "the thing")
        else:
            assert parse_uint(value) == expected, repr(value)


def test_hex_bytes_reads_exactly_0x_and_pairs_of_hex_digits() -> None:
    for value in _strings(random.Random(16)):
        assert hex_bytes(value) == _reference_hex_bytes(value), repr(value)

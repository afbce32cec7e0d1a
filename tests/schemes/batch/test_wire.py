"""The batch-settlement wire models: what the official client signs parses; malformed input is
refused with an error naming the field and the spec's reason."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from x402_mcp.core.wire import MAX_PAYLOAD_BYTES
from x402_mcp.errors import MalformedPayment
from x402_mcp.schemes.batch import reasons
from x402_mcp.schemes.batch.wire import (
    ChannelState,
    DepositPayload,
    RefundPayload,
    VoucherPayload,
    parse_batch_extra,
    parse_batch_payload,
    parse_batch_payment,
)

from .official import Parties, payment, requirements_dict, signed_payload


@pytest.fixture(scope="module")
def parties() -> Parties:
    return Parties.new()


@pytest.fixture(scope="module")
def deposit(parties: Parties) -> dict[str, Any]:
    return signed_payload(parties, requirements_dict(parties))


@pytest.fixture(scope="module")
def voucher(parties: Parties) -> dict[str, Any]:
    return signed_payload(parties, requirements_dict(parties), charged=10_000, balance=100_000)


def test_the_official_clients_deposit_parses_field_for_field(deposit: dict[str, Any]) -> None:
    parsed = parse_batch_payload(deposit)
    assert isinstance(parsed, DepositPayload)
    assert parsed.dump() == deposit  # nothing lost, nothing added, camelCase as sent
    erc3009 = parsed.deposit.authorization.erc3009_authorization
    assert (
        erc3009 is not None
        and erc3009.salt == deposit["deposit"]["authorization"]["erc3009Authorization"]["salt"]
    )


def test_the_official_clients_voucher_parses_as_a_whole_payment(
    parties: Parties, voucher: dict[str, Any]
) -> None:
    requirements = requirements_dict(parties)
    for form in (
        payment(requirements, voucher),
        json.dumps(payment(requirements, voucher)),
        base64.b64encode(json.dumps(payment(requirements, voucher)).encode()).decode(),
    ):
        parsed = parse_batch_payment(form)
        assert isinstance(parsed.payload, VoucherPayload)
        assert parsed.payload.voucher.max_claimable_amount == "20000"
        assert parsed.accepted.extra["receiverAuthorizer"] == parties.authorizer.address


def test_a_refund_with_and_without_an_amount(voucher: dict[str, Any]) -> None:
    full = parse_batch_payload({**voucher, "type": "refund"})
    partial = parse_batch_payload({**voucher, "type": "refund", "amount": "1500"})
    assert isinstance(full, RefundPayload) and full.amount is None
    assert isinstance(partial, RefundPayload) and partial.amount == "1500"


def test_unknown_keys_are_dropped_not_carried(voucher: dict[str, Any]) -> None:
    parsed = parse_batch_payload({**voucher, "__extensions": {"x": 1}})
    assert "__extensions" not in parsed.dump()


def _with(payload: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(payload))
    *parents, last = path.split(".")
    node = copy
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return copy


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("channelConfig.payer", "0x1234", "channelConfig.payer"),
        ("channelConfig.receiver", 12, "channelConfig.receiver"),
        ("channelConfig.withdrawDelay", "900", "channelConfig.withdrawDelay"),
        ("channelConfig.withdrawDelay", 900.0, "channelConfig.withdrawDelay"),
        ("channelConfig.withdrawDelay", 2**40, "channelConfig.withdrawDelay"),
        ("channelConfig.salt", "0x00", "channelConfig.salt"),
        ("channelConfig.salt", _DELETE, "channelConfig.salt"),
        ("voucher.channelId", "0x" + "g" * 64, "voucher.channelId"),
        ("voucher.maxClaimableAmount", 20000, "voucher.maxClaimableAmount"),
        ("voucher.maxClaimableAmount", "-1", "voucher.maxClaimableAmount"),
        ("voucher.maxClaimableAmount", "020000", "voucher.maxClaimableAmount"),
        ("voucher.maxClaimableAmount", str(2**128), "voucher.maxClaimableAmount"),
        ("voucher.signature", "0x", "voucher.signature"),
        ("voucher.signature", "0x" + "ab" * 4097, "voucher.signature"),
        ("voucher.signature", True, "voucher.signature"),
    ],
)
def test_a_malformed_voucher_names_its_field(
    voucher: dict[str, Any], path: str, value: Any, named: str
) -> None:
    with pytest.raises(MalformedPayment) as refused:
        parse_batch_payload(_with(voucher, path, value))
    assert named in str(refused.value)
    assert refused.value.reason == reasons.VOUCHER_PAYLOAD


def test_a_malformed_deposit_carries_the_deposit_reason(deposit: dict[str, Any]) -> None:
    authorization = deposit["deposit"]["authorization"]["erc3009Authorization"]
    both = _with(deposit, "deposit.authorization.permit2Authorization", {"from": "0x0"})
    none = _with(deposit, "deposit.authorization.erc3009Authorization", _DELETE)
    late = _with(deposit, "deposit.authorization.erc3009Authorization.validBefore", 17)
    for bad in (both, none, late):
        with pytest.raises(MalformedPayment) as refused:
            parse_batch_payload(bad)
        assert refused.value.reason == reasons.DEPOSIT_PAYLOAD
        assert "deposit" in str(refused.value)
    assert authorization["validAfter"] == "0"


@pytest.mark.parametrize("kind", [None, "claim", "settle", 3, "Voucher"])
def test_an_unknown_payload_type_is_refused_by_name(voucher: dict[str, Any], kind: Any) -> None:
    with pytest.raises(MalformedPayment) as refused:
        parse_batch_payload({**voucher, "type": kind})
    assert refused.value.reason == reasons.INVALID_PAYLOAD_TYPE
    assert "payload.type" in str(refused.value)


def test_an_oversized_payment_is_refused_unread(parties: Parties, voucher: dict[str, Any]) -> None:
    padded = {**payment(requirements_dict(parties), voucher), "padding": "x" * MAX_PAYLOAD_BYTES}
    with pytest.raises(MalformedPayment, match="larger than"):
        parse_batch_payment(padded)


def test_a_payment_needs_version_2_and_valid_requirements(parties: Parties, voucher: dict[str, Any]) -> None:
    whole = payment(requirements_dict(parties), voucher)
    with pytest.raises(MalformedPayment, match="x402Version 2"):
        parse_batch_payment({**whole, "x402Version": 1})
    with pytest.raises(MalformedPayment, match=r"accepted\.amount"):
        parse_batch_payment({**whole, "accepted": {**whole["accepted"], "amount": 5}})


def test_the_requirements_extra_is_checked_field_by_field(parties: Parties) -> None:
    extra = requirements_dict(parties)["extra"]
    parsed = parse_batch_extra({**extra, "minDeposit": "100000"})
    assert parsed.withdraw_delay == 900 and parsed.min_deposit == "100000"
    cases = [
        ({**extra, "receiverAuthorizer": "0x" + "0" * 40}, "receiverAuthorizer", reasons.INVALID_SCHEME),
        ({**extra, "withdrawDelay": 899}, "withdrawDelay", reasons.INVALID_SCHEME),
        ({**extra, "withdrawDelay": 2_592_001}, "withdrawDelay", reasons.INVALID_SCHEME),
        ({k: v for k, v in extra.items() if k != "name"}, "name", reasons.MISSING_EIP712_DOMAIN),
        ({**extra, "version": ""}, "version", reasons.MISSING_EIP712_DOMAIN),
        ({**extra, "assetTransferMethod": "permit3"}, "assetTransferMethod", reasons.INVALID_SCHEME),
    ]
    for bad, field, reason in cases:
        with pytest.raises(MalformedPayment) as refused:
            parse_batch_extra(bad)
        assert field in str(refused.value) and refused.value.reason == reason


def test_channel_state_reads_either_counter_form_and_writes_the_specs() -> None:
    state = ChannelState.model_validate(
        {
            "channelId": "0x" + "ab" * 32,
            "balance": "100",
            "totalClaimed": "0",
            "refundNonce": 2,
            "withdrawRequestedAt": "0",
        }
    )
    assert (state.refund_nonce, state.withdraw_requested_at) == (2, 0)
    assert state.dump()["refundNonce"] == "2" and state.dump()["withdrawRequestedAt"] == 0
    with pytest.raises(ValueError, match="refundNonce"):
        ChannelState.model_validate({**state.dump(), "refundNonce": -1})

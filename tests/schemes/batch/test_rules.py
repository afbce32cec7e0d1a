"""The spec's verification rules as pure decisions, with the official server scheme as the oracle:
what it accepts we accept, and a voucher it refuses we refuse with the same reason."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from eth_account import Account

from x402_mcp.core.wire import PaymentRequirements
from x402_mcp.schemes.batch import reasons
from x402_mcp.schemes.batch.digests import channel_id, voucher_digest
from x402_mcp.schemes.batch.records import ChainSnapshot, ChannelRecord
from x402_mcp.schemes.batch.rules import (
    Accept,
    AcceptRefund,
    Corrective,
    NeedsChain,
    Refuse,
    charge,
    decide,
)
from x402_mcp.schemes.batch.wire import ChannelConfig, parse_batch_payload, parse_batch_payment

from .official import (
    CHAIN_ID,
    PRICE,
    Parties,
    payment,
    requirements_dict,
    resign_voucher,
    server_verdict,
    signed_payload,
)

BALANCE = 100_000
CHARGED = 30_000
NOW = time.time()


def _record(
    payload: dict[str, Any], *, charged: int = CHARGED, balance: int = BALANCE, claimed: int = 0
) -> ChannelRecord:
    config = ChannelConfig.model_validate(payload["channelConfig"])
    return ChannelRecord(
        channel_id=channel_id(config, CHAIN_ID),
        network="eip155:84532",
        config=config,
        chain=ChainSnapshot(balance=balance, total_claimed=claimed),
        charged=charged,
    )


def _ours(requirements: dict[str, Any], payload: dict[str, Any], **record: int) -> Any:
    return decide(
        parse_batch_payment(payment(requirements, payload)),
        PaymentRequirements.model_validate(requirements),
        record=_record(payload, **record),
        now=NOW,
    )


Mutation = Callable[[Parties, dict[str, Any], dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]]


def _unchanged(
    parties: Parties, requirements: dict[str, Any], payload: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    return requirements, payload


def _stale_base(
    parties: Parties, requirements: dict[str, Any], payload: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    return requirements, resign_voucher(payload, parties.payer, CHARGED + 2 * PRICE)


def _other_signer(
    parties: Parties, requirements: dict[str, Any], payload: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    return requirements, resign_voucher(payload, Account.create(), CHARGED + PRICE)


def _foreign_channel_id(
    parties: Parties, requirements: dict[str, Any], payload: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    voucher = {**payload["voucher"], "channelId": "0x" + "11" * 32}
    return requirements, {**payload, "voucher": voucher}


def _other_receiver(
    parties: Parties, requirements: dict[str, Any], payload: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    return {**requirements, "payTo": Account.create().address}, payload


def _other_authorizer(
    parties: Parties, requirements: dict[str, Any], payload: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    extra = {**requirements["extra"], "receiverAuthorizer": Account.create().address}
    return {**requirements, "extra": extra}, payload


def _other_token(
    parties: Parties, requirements: dict[str, Any], payload: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    return {**requirements, "asset": Account.create().address}, payload


def _other_delay(
    parties: Parties, requirements: dict[str, Any], payload: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    return {**requirements, "extra": {**requirements["extra"], "withdrawDelay": 1800}}, payload


# (mutation, the channel record's balance and claimed total, the reason both must give)
CASES: list[tuple[Mutation, int, int, str | None]] = [
    (_unchanged, BALANCE, 0, None),
    (_unchanged, BALANCE, CHARGED, None),
    (_stale_base, BALANCE, 0, reasons.CUMULATIVE_AMOUNT_MISMATCH),
    (_other_signer, BALANCE, 0, reasons.INVALID_VOUCHER_SIGNATURE),
    (_foreign_channel_id, BALANCE, 0, reasons.CHANNEL_ID_MISMATCH),
    (_other_receiver, BALANCE, 0, reasons.RECEIVER_MISMATCH),
    (_other_authorizer, BALANCE, 0, reasons.RECEIVER_AUTHORIZER_MISMATCH),
    (_other_token, BALANCE, 0, reasons.TOKEN_MISMATCH),
    (_other_delay, BALANCE, 0, reasons.WITHDRAW_DELAY_MISMATCH),
    (_unchanged, CHARGED + PRICE - 1, 0, reasons.CUMULATIVE_EXCEEDS_BALANCE),
    (_unchanged, BALANCE, CHARGED + PRICE, reasons.CUMULATIVE_BELOW_CLAIMED),
    (_other_signer, CHARGED, 0, reasons.INVALID_VOUCHER_SIGNATURE),  # signature before balance
]


@pytest.mark.parametrize(
    ("mutate", "balance", "claimed", "expected"), CASES, ids=lambda case: getattr(case, "__name__", None)
)
def test_we_decide_as_the_official_server_scheme(
    mutate: Mutation, balance: int, claimed: int, expected: str | None
) -> None:
    parties = Parties.new()
    honest = requirements_dict(parties)
    signed = signed_payload(parties, honest, charged=CHARGED, balance=BALANCE)
    requirements, payload = mutate(parties, honest, signed)

    official = server_verdict(requirements, payload, charged=CHARGED, balance=balance, total_claimed=claimed)
    ours = _ours(requirements, payload, balance=balance, claimed=claimed)

    assert official == expected
    if expected is None:
        assert isinstance(ours, Accept)
        assert (ours.base, ours.max_charge, ours.ceiling) == (CHARGED, PRICE, CHARGED + PRICE)
    elif expected == reasons.CUMULATIVE_AMOUNT_MISMATCH:
        assert isinstance(ours, Corrective) and ours.reason == expected
    else:
        assert isinstance(ours, Refuse) and ours.reason == expected, ours


def test_the_corrective_answer_carries_our_state_and_latest_voucher() -> None:
    parties = Parties.new()
    requirements = requirements_dict(parties)
    payload = signed_payload(
        parties, requirements, charged=0, balance=BALANCE
    )  # the client forgot its charges
    record = _record(payload)
    from dataclasses import replace

    record = replace(record, signed_max_claimable=CHARGED, signature="0x" + "ab" * 65)
    decision = decide(
        parse_batch_payload(payload), PaymentRequirements.model_validate(requirements), record=record, now=NOW
    )
    assert isinstance(decision, Corrective)
    state = decision.channel_state.dump()
    assert state["chargedCumulativeAmount"] == str(CHARGED) and state["balance"] == str(BALANCE)
    assert state["channelId"] == record.channel_id and state["refundNonce"] == "0"
    assert decision.voucher_state is not None
    assert decision.voucher_state.dump() == {
        "signedMaxClaimable": str(CHARGED),
        "signature": "0x" + "ab" * 65,
    }


def test_without_a_record_the_chain_decides_and_its_claimed_total_is_the_base() -> None:
    parties = Parties.new()
    requirements = requirements_dict(parties)
    reqs = PaymentRequirements.model_validate(requirements)
    payload = parse_batch_payload(signed_payload(parties, requirements, charged=CHARGED, balance=BALANCE))
    assert decide(payload, reqs, record=None, now=NOW) == NeedsChain(snapshot=True)
    accepted = decide(payload, reqs, record=None, snapshot=ChainSnapshot(BALANCE, CHARGED), now=NOW)
    assert isinstance(accepted, Accept) and accepted.base == CHARGED
    behind = decide(payload, reqs, record=None, snapshot=ChainSnapshot(BALANCE, 0), now=NOW)
    assert isinstance(behind, Corrective) and behind.voucher_state is None
    assert behind.channel_state.charged_cumulative_amount == "0"


def test_a_first_deposit_is_accepted_with_the_escrow_it_brings() -> None:
    parties = Parties.new()
    requirements = requirements_dict(parties)
    reqs = PaymentRequirements.model_validate(requirements)
    payload = parse_batch_payload(signed_payload(parties, requirements))
    empty = ChainSnapshot(balance=0, total_claimed=0)
    decision = decide(payload, reqs, record=None, snapshot=empty, now=time.time())
    assert isinstance(decision, Accept) and decision.kind == "deposit"
    assert decision.deposit is not None and (decision.base, decision.ceiling) == (0, PRICE)
    low = decide(payload, reqs, record=None, snapshot=empty, now=time.time(), min_deposit=10**12)
    assert isinstance(low, Refuse) and low.reason == reasons.DEPOSIT_BELOW_MIN_DEPOSIT
    later = decide(payload, reqs, record=None, snapshot=empty, now=time.time() + 10**6)
    assert isinstance(later, Refuse) and later.reason == reasons.VALID_BEFORE_EXPIRED


def test_a_deposit_signed_by_someone_else_needs_the_chain_to_vouch_for_a_contract_payer() -> None:
    parties = Parties.new()
    requirements = requirements_dict(parties)
    raw = signed_payload(parties, requirements)
    authorization = raw["deposit"]["authorization"]["erc3009Authorization"]
    forged = {**authorization, "signature": "0x" + "11" * 64 + "1b"}
    raw = {**raw, "deposit": {**raw["deposit"], "authorization": {"erc3009Authorization": forged}}}
    decision = decide(
        parse_batch_payload(raw),
        PaymentRequirements.model_validate(requirements),
        record=None,
        snapshot=ChainSnapshot(0, 0),
        now=time.time(),
    )
    assert isinstance(decision, NeedsChain) and len(decision.signatures) == 1
    check = decision.signatures[0]
    assert (
        check.signer == parties.payer.address
        and check.reason == reasons.INVALID_RECEIVE_AUTHORIZATION_SIGNATURE
    )


def test_a_payer_signed_voucher_needs_eip1271_then_passes_once_the_chain_confirmed_it() -> None:
    parties = Parties.new()
    requirements = requirements_dict(parties)
    reqs = PaymentRequirements.model_validate(requirements)
    signed = signed_payload(parties, requirements, charged=CHARGED, balance=BALANCE)
    wallet = Account.create().address  # a contract wallet, owned by the payer's key
    config = {**signed["channelConfig"], "payer": wallet, "payerAuthorizer": "0x" + "0" * 40}
    cid = channel_id(ChannelConfig.model_validate(config), CHAIN_ID)
    payload = resign_voucher(
        {**signed, "channelConfig": config, "voucher": {**signed["voucher"], "channelId": cid}},
        parties.payer,
        CHARGED + PRICE,
    )
    record = _record(payload)
    first = decide(parse_batch_payload(payload), reqs, record=record, now=NOW)
    assert isinstance(first, NeedsChain) and not first.snapshot
    (check,) = first.signatures
    assert check.signer == wallet and check.digest == voucher_digest(cid, CHARGED + PRICE, CHAIN_ID)
    assert check.reason == reasons.INVALID_VOUCHER_SIGNATURE
    after = decide(
        parse_batch_payload(payload), reqs, record=record, now=NOW, verified_on_chain={check.digest}
    )
    assert isinstance(after, Accept)


def test_a_refund_charges_nothing_and_returns_the_unspent_escrow() -> None:
    parties = Parties.new()
    requirements = requirements_dict(parties)
    reqs = PaymentRequirements.model_validate(requirements)
    voucher = signed_payload(parties, requirements, charged=CHARGED, balance=BALANCE)
    refund = {**resign_voucher(voucher, parties.payer, CHARGED), "type": "refund"}
    record = _record(refund)
    full = decide(parse_batch_payload(refund), reqs, record=record, now=NOW)
    assert isinstance(full, AcceptRefund) and full.amount == BALANCE - CHARGED
    part = decide(parse_batch_payload({**refund, "amount": "5"}), reqs, record=record, now=NOW)
    assert isinstance(part, AcceptRefund) and part.amount == 5
    for amount, reason in (("0", reasons.REFUND_AMOUNT_INVALID), (str(BALANCE), reasons.REFUND_NO_BALANCE)):
        refused = decide(parse_batch_payload({**refund, "amount": amount}), reqs, record=record, now=NOW)
        assert isinstance(refused, Refuse) and refused.reason == reason
    # A refund voucher priced like a paid one is stale: the corrective answer, not a refund.
    paid_ceiling = decide(parse_batch_payload({**voucher, "type": "refund"}), reqs, record=record, now=NOW)
    assert isinstance(paid_ceiling, Corrective)


def test_a_held_channel_is_busy() -> None:
    from dataclasses import replace

    parties = Parties.new()
    requirements = requirements_dict(parties)
    payload = signed_payload(parties, requirements, charged=CHARGED, balance=BALANCE)
    held = replace(_record(payload), reservation="r1", reserved_until=NOW + 5)
    decision = decide(
        parse_batch_payload(payload), PaymentRequirements.model_validate(requirements), record=held, now=NOW
    )
    assert isinstance(decision, Refuse) and decision.reason == reasons.CHANNEL_BUSY
    lapsed = decide(
        parse_batch_payload(payload),
        PaymentRequirements.model_validate(requirements),
        record=held,
        now=NOW + 6,
    )
    assert isinstance(lapsed, Accept)


def test_charging_commits_once_at_most_the_ceiling_and_conflicts_when_stale() -> None:
    parties = Parties.new()
    requirements = requirements_dict(parties)
    payload = parse_batch_payload(signed_payload(parties, requirements, charged=CHARGED, balance=BALANCE))
    record = _record(payload.dump())
    done = charge(
        record, payload.voucher, base=CHARGED, amount=PRICE // 2, tool="t", now=NOW, request_id="pr_1"
    )
    assert not isinstance(done, Refuse)
    after, line = done
    assert (after.charged, after.signed_max_claimable, after.signature) == (
        CHARGED + PRICE // 2,
        CHARGED + PRICE,
        payload.voucher.signature,
    )
    assert (line.amount, line.cumulative, line.request_id) == (PRICE // 2, CHARGED + PRICE // 2, "pr_1")
    again = charge(after, payload.voucher, base=CHARGED, amount=PRICE // 2, tool="t", now=NOW)
    assert isinstance(again, Refuse) and again.reason == reasons.CUMULATIVE_AMOUNT_MISMATCH
    over = charge(record, payload.voucher, base=CHARGED, amount=PRICE + 1, tool="t", now=NOW)
    assert isinstance(over, Refuse) and over.reason == reasons.CHARGE_EXCEEDS_SIGNED_CUMULATIVE
    missing = charge(None, payload.voucher, base=CHARGED, amount=1, tool="t", now=NOW)
    assert isinstance(missing, Refuse) and missing.reason == reasons.MISSING_CHANNEL
    foreign = payload.voucher.model_copy(update={"channel_id": "0x" + "22" * 32})
    elsewhere = charge(record, foreign, base=CHARGED, amount=1, tool="t", now=NOW)
    assert isinstance(elsewhere, Refuse) and elsewhere.reason == reasons.CHANNEL_ID_MISMATCH


def test_a_permit2_deposit_is_checked_as_far_as_it_shows_without_the_chain() -> None:
    parties = Parties.new()
    permit2 = requirements_dict(parties, assetTransferMethod="permit2")
    raw = signed_payload(parties, permit2)
    assert "permit2Authorization" in raw["deposit"]["authorization"]
    payload = parse_batch_payload(raw)
    empty = ChainSnapshot(0, 0)
    accepted = decide(
        payload, PaymentRequirements.model_validate(permit2), record=None, snapshot=empty, now=NOW
    )
    assert isinstance(accepted, Accept) and accepted.kind == "deposit"
    eip3009 = PaymentRequirements.model_validate(requirements_dict(parties))
    refused = decide(payload, eip3009, record=None, snapshot=empty, now=NOW)
    assert isinstance(refused, Refuse) and refused.reason == reasons.ERC3009_AUTHORIZATION_REQUIRED
    authorization = raw["deposit"]["authorization"]["permit2Authorization"]
    for field, value, reason in (
        ("spender", parties.payer.address, reasons.PERMIT2_INVALID_SPENDER),
        ("deadline", str(int(NOW)), reasons.PERMIT2_DEADLINE_EXPIRED),
        ("witness", {"channelId": "0x" + "33" * 32}, reasons.DEPOSIT_PAYLOAD),
    ):
        bent = {**authorization, field: value}
        altered = {**raw, "deposit": {**raw["deposit"], "authorization": {"permit2Authorization": bent}}}
        decision = decide(
            parse_batch_payload(altered),
            PaymentRequirements.model_validate(permit2),
            record=None,
            snapshot=empty,
            now=NOW,
        )
        assert isinstance(decision, Refuse) and decision.reason == reason, field

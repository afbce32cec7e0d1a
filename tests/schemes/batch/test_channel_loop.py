"""A channel's life with the official client on one side and our pure parts on the other: it
deposits, pays by vouchers at dynamic prices, reconciles from our receipts and keeps paying;
our corrective answer and claim payload are what the official SDK reads. No chain: the deposit
is taken as landed, as the settlement backend would report it."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from x402.mechanisms.evm.batch_settlement import ClaimPayload, PaymentRequirementsExtra, PaymentResponseExtra
from x402.mechanisms.evm.batch_settlement.facilitator.claim import build_voucher_claim_args
from x402.schemas import PaymentPayload as OfficialPayload
from x402.schemas import PaymentRequirements as OfficialRequirements
from x402.schemas import SettleResponse as OfficialSettleResponse
from x402.schemas.hooks import PaymentResponseContext

from x402_mcp.core.wire import PaymentRequirements
from x402_mcp.ledger import SQLiteLedger
from x402_mcp.ledger.channels import owner_of
from x402_mcp.schemes.batch.answers import claim_entries, claim_payload, corrected_requirements, receipt_extra
from x402_mcp.schemes.batch.digests import claim_batch_digest, recover, voucher_digest
from x402_mcp.schemes.batch.records import ChainSnapshot, ChannelRecord
from x402_mcp.schemes.batch.rules import Accept, Corrective, decide
from x402_mcp.schemes.batch.wire import parse_batch_extra, parse_batch_payment

from .official import CHAIN_ID, NETWORK, PRICE, Parties, client, payment, requirements_dict

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_the_official_client_pays_call_after_call_from_our_receipts(tmp_path: Path) -> None:
    parties = Parties.new()
    requirements = requirements_dict(parties)
    ours = PaymentRequirements.model_validate(requirements)
    official = OfficialRequirements.model_validate(requirements)
    scheme, storage = client(parties)
    ledger = SQLiteLedger(tmp_path / "ledger.sqlite")
    await ledger.open()
    try:
        charges = [PRICE, PRICE // 3, 0, PRICE]  # a dynamic price: at most the quoted one
        record: ChannelRecord | None = None
        for n, charged in enumerate(charges):
            raw = scheme.create_payment_payload(official)
            paid = parse_batch_payment(payment(requirements, raw))
            now = time.time()
            snapshot = ChainSnapshot(0, 0) if record is None else None
            decision = decide(paid, ours, record=record, snapshot=snapshot, now=now)
            assert isinstance(decision, Accept), decision
            assert decision.kind == ("deposit" if n == 0 else "voucher")
            if decision.deposit is not None:  # the deposit landed: the chain holds it
                deposited = int(decision.deposit.amount)
                landed = ChannelRecord(
                    decision.channel_id, NETWORK, decision.config, ChainSnapshot(deposited, 0), synced_at=now
                )
                await ledger.open_channel(landed, now=now)
            record, _ = await ledger.record_charge(
                decision.channel_id, decision.voucher, base=decision.base, amount=charged, tool="t", now=now
            )
            extra = receipt_extra(record, charged_amount=charged)
            PaymentResponseExtra.from_dict(extra)  # the official shape
            settle = OfficialSettleResponse(success=True, transaction="", network=NETWORK, extra=extra)
            scheme.scheme_hooks.on_payment_response(
                PaymentResponseContext(
                    payment_payload=OfficialPayload.model_validate(payment(requirements, raw)),
                    requirements=official,
                    settle_response=settle,
                )
            )
        assert record is not None and record.charged == sum(charges)
        state = storage.get(record.channel_id)
        assert state is not None and state.charged_cumulative_amount == str(sum(charges))
        assert [c.amount for c in await ledger.charges(record.channel_id)] == charges

        # A client that lost its state signs from zero: our corrective answer resyncs it.
        stale_client, _ = client(parties, salt=record.config.salt)
        stale = parse_batch_payment(payment(requirements, stale_client.create_payment_payload(official)))
        correction = decide(
            stale, ours, record=replace(record, chain=ChainSnapshot(10**6, 0)), now=time.time()
        )
        assert isinstance(correction, Corrective)
        offered = corrected_requirements(ours, correction)
        assert "channelState" not in ours.extra  # the offer itself is untouched
        read = PaymentRequirementsExtra.from_dict(offered.extra)
        assert read.channel_state is not None and read.channel_state.charged_cumulative_amount == str(
            sum(charges)
        )
        assert read.voucher_state is not None and parse_batch_extra(offered.extra).voucher_state is not None
        # The client checks the voucher it is shown was signed by its own key before adopting it.
        digest = voucher_digest(
            record.channel_id, int(read.voucher_state.signed_max_claimable or 0), CHAIN_ID
        )
        signer = recover(digest, read.voucher_state.signature or "")
        assert signer is not None and "0x" + signer.hex() == parties.payer.address.lower()

        # The claim of what was charged, in the official facilitator's terms.
        owed = await ledger.unclaimed(owner=owner_of(record))
        digest = claim_batch_digest(claim_entries(owed), CHAIN_ID)
        signature = "0x" + bytes(parties.authorizer.unsafe_sign_hash(digest).signature).hex()
        body = claim_payload(owed, authorizer_signature=signature)
        parsed = ClaimPayload.from_dict(body)
        ((voucher, voucher_signature, total),) = build_voucher_claim_args(parsed.claims)
        assert (voucher[1], total) == (record.signed_max_claimable, record.charged)
        assert voucher_signature == bytes.fromhex(record.signature[2:])  # type: ignore[index]
    finally:
        await ledger.close()

"""Our channel id and digests equal the official SDK's, byte for byte."""

from __future__ import annotations

import os

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from x402.mechanisms.evm.batch_settlement import (
    VOUCHER_TYPES,
    VoucherClaim,
    compute_channel_id,
    get_batch_settlement_eip712_domain,
)
from x402.mechanisms.evm.batch_settlement import (
    ChannelConfig as OfficialConfig,
)
from x402.mechanisms.evm.batch_settlement.authorizer_signer import (
    LocalAuthorizerSigner,
    sign_claim_batch,
    sign_refund,
)
from x402.mechanisms.evm.batch_settlement.encoding import build_erc3009_deposit_nonce

from x402_mcp.schemes.batch import digests
from x402_mcp.schemes.batch.constants import ERC3009_DEPOSIT_COLLECTOR_ADDRESS
from x402_mcp.schemes.batch.digests import ClaimEntry
from x402_mcp.schemes.batch.wire import ChannelConfig, parse_batch_payload

from .official import CHAIN_ID, NETWORK, TOKEN, Parties, requirements_dict, signed_payload

ZERO = "0x" + "0" * 40


def _config(payer_authorizer: str | None = None, delay: int = 900) -> OfficialConfig:
    payer = Account.create().address
    return OfficialConfig(
        payer=payer,
        payer_authorizer=payer if payer_authorizer is None else payer_authorizer,
        receiver=Account.create().address,
        receiver_authorizer=Account.create().address,
        token=TOKEN,
        withdraw_delay=delay,
        salt="0x" + os.urandom(32).hex(),
    )


@pytest.mark.parametrize("chain_id", [1, 8453, CHAIN_ID, 31337, 2**64])
@pytest.mark.parametrize("payer_authorizer", [None, ZERO])
def test_channel_ids_equal_the_official_ones(chain_id: int, payer_authorizer: str | None) -> None:
    for delay in (900, 2_592_000):
        official = _config(payer_authorizer, delay)
        ours = ChannelConfig.model_validate(official.to_dict())
        assert digests.channel_id(ours, chain_id) == compute_channel_id(official, chain_id).lower()


def test_a_changed_field_or_chain_names_another_channel() -> None:
    official = _config()
    ours = ChannelConfig.model_validate(official.to_dict())
    first = digests.channel_id(ours, CHAIN_ID)
    assert digests.channel_id(ours, CHAIN_ID + 1) != first
    assert digests.channel_id(ours.model_copy(update={"withdraw_delay": 901}), CHAIN_ID) != first


@pytest.mark.parametrize("amount", [0, 1, 10_000, 2**128 - 1])
def test_the_voucher_digest_is_eip712s(amount: int) -> None:
    channel = "0x" + os.urandom(32).hex()
    message = encode_typed_data(
        domain_data=get_batch_settlement_eip712_domain(CHAIN_ID),
        message_types=VOUCHER_TYPES,
        message_data={"channelId": bytes.fromhex(channel[2:]), "maxClaimableAmount": amount},
    )
    expected = keccak(b"\x19" + message.version + message.header + message.body)
    assert digests.voucher_digest(channel, amount, CHAIN_ID) == expected


def test_the_official_clients_voucher_recovers_to_its_authorizer() -> None:
    parties = Parties.new()
    payload = parse_batch_payload(
        signed_payload(parties, requirements_dict(parties), charged=0, balance=10**6)
    )
    signer = digests.voucher_signer(payload.voucher, CHAIN_ID)
    assert signer is not None and "0x" + signer.hex() == parties.payer.address.lower()
    assert digests.voucher_signer(payload.voucher, CHAIN_ID + 1) != signer


def test_claim_batch_and_refund_digests_recover_the_official_authorizer_signatures() -> None:
    authorizer = Account.create()
    signer = LocalAuthorizerSigner(authorizer)
    configs = [_config() for _ in range(3)]
    claims = [
        VoucherClaim(
            channel=config,
            max_claimable_amount=str(5_000 * n),
            signature="0x00",
            total_claimed=str(4_000 * n),
        )
        for n, config in enumerate(configs, start=1)
    ]
    entries = [
        ClaimEntry(
            compute_channel_id(claim.channel, CHAIN_ID),
            int(claim.max_claimable_amount),
            int(claim.total_claimed),
        )
        for claim in claims
    ]
    signature = sign_claim_batch(signer, claims, NETWORK)
    recovered = digests.recover(digests.claim_batch_digest(entries, CHAIN_ID), signature)
    assert recovered is not None and "0x" + recovered.hex() == authorizer.address.lower()
    reordered = digests.recover(digests.claim_batch_digest(entries[::-1], CHAIN_ID), signature)
    assert reordered is not None and "0x" + reordered.hex() != authorizer.address.lower()

    channel = entries[0].channel_id
    refund = sign_refund(signer, channel, 1_500, 3, NETWORK)
    recovered = digests.recover(digests.refund_digest(channel, 3, 1_500, CHAIN_ID), refund)
    assert recovered is not None and "0x" + recovered.hex() == authorizer.address.lower()


def test_the_deposit_nonce_and_authorization_digest_match_the_official_deposit() -> None:
    parties = Parties.new()
    raw = signed_payload(parties, requirements_dict(parties))
    payload = parse_batch_payload(raw)
    channel, erc3009 = payload.voucher.channel_id, raw["deposit"]["authorization"]["erc3009Authorization"]
    nonce = digests.deposit_nonce(channel, erc3009["salt"])
    assert nonce == build_erc3009_deposit_nonce(channel, erc3009["salt"])
    digest = digests.receive_authorization_digest(
        payer=parties.payer.address,
        collector=ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
        value=int(raw["deposit"]["amount"]),
        valid_after=int(erc3009["validAfter"]),
        valid_before=int(erc3009["validBefore"]),
        nonce=nonce,
        token_name="USDC",
        token_version="2",
        chain_id=CHAIN_ID,
        token=TOKEN,
    )
    recovered = digests.recover(digest, erc3009["signature"])
    assert recovered is not None and "0x" + recovered.hex() == parties.payer.address.lower()

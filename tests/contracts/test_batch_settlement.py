"""Our batch-settlement doubles against the scheme's rules, on the DevChain and on anvil.

Each test reads as one rule of the x402 `batch-settlement` EVM specification (channel identity,
deposits through the ERC-3009 collector, voucher and claim-batch signatures, settle, the timed
withdrawal, signed refunds with their nonce, multicall). The official SDK's own hashing is the
oracle for ids and digests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak
from web3.logs import DISCARD

from x402_mcp.chains.contracts import missing_canonical_contracts
from x402_mcp.chains.devchain import TokenChain
from x402_mcp.schemes.batch.constants import (
    BATCH_SETTLEMENT_ADDRESS,
    CHANNEL_CONFIG_TYPES,
    ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
    batch_domain,
)
from x402_mcp.settlement.contracts import load_artifact

from ..chains import deploy_eip1271_wallet
from .batch import BatchContracts, Channel

DEPOSIT = 1_000_000  # 1 USDC


@pytest.fixture
def batch(chain: TokenChain) -> BatchContracts:
    return BatchContracts(chain)


@pytest.fixture
def funded(batch: BatchContracts) -> Channel:
    """A channel holding one DEPOSIT."""
    channel = batch.open_channel()
    batch.deposit(channel, DEPOSIT)
    return channel


def _official_config(channel: Channel) -> Any:
    from x402.mechanisms.evm.batch_settlement.types import ChannelConfig

    config = channel.config
    return ChannelConfig(
        payer=config[0],
        payer_authorizer=config[1],
        receiver=config[2],
        receiver_authorizer=config[3],
        token=config[4],
        withdraw_delay=config[5],
        salt="0x" + config[6].hex(),
    )


# --------------------------------------------------------------------------- identity and digests


def test_the_contracts_sit_at_their_canonical_addresses(chain: TokenChain) -> None:
    assert missing_canonical_contracts(chain.w3) == []


def test_channel_id_is_the_eip712_hash_of_the_config_under_the_chains_domain(batch: BatchContracts) -> None:
    from x402.mechanisms.evm.batch_settlement.utils import compute_channel_id

    channel = batch.open_channel()
    on_chain = batch.channel_id(channel)
    config = dict(
        zip([f["name"] for f in CHANNEL_CONFIG_TYPES["ChannelConfig"]], channel.config, strict=True)
    )
    ours = encode_typed_data(batch_domain(batch.chain_id), CHANNEL_CONFIG_TYPES, config)
    assert on_chain == keccak(b"\x19\x01" + ours.header + ours.body)
    assert "0x" + on_chain.hex() == compute_channel_id(_official_config(channel), batch.chain_id)
    # Bound to the chain: the same config has another id elsewhere.
    assert "0x" + on_chain.hex() != compute_channel_id(_official_config(channel), batch.chain_id + 1)


def test_voucher_refund_and_claim_batch_digests_are_what_the_sdk_signs(batch: BatchContracts) -> None:
    from x402.mechanisms.evm.batch_settlement.authorizer_signer import (
        LocalAuthorizerSigner,
        sign_claim_batch,
        sign_refund,
    )
    from x402.mechanisms.evm.batch_settlement.types import VoucherClaim

    channel = batch.open_channel()
    channel_id = batch.channel_id(channel)
    views = batch.settlement.functions
    voucher = batch.voucher(channel, 5_000)
    digest = views.getVoucherDigest(channel_id, 5_000).call()
    assert Account._recover_hash(digest, signature=voucher) == channel.voucher_signer.address

    network = f"eip155:{batch.chain_id}"
    authorizer = LocalAuthorizerSigner(channel.receiver_authorizer)
    refund = sign_refund(authorizer, "0x" + channel_id.hex(), 700, 3, network)
    refund_digest = views.getRefundDigest(channel_id, 3, 700).call()
    assert Account._recover_hash(refund_digest, signature=refund) == channel.receiver_authorizer.address

    entries = [batch.claim_entry(channel, 5_000, 4_000), batch.claim_entry(channel, 6_000, 6_000)]
    claims = [
        VoucherClaim(
            channel=_official_config(channel),
            max_claimable_amount=str(ceiling),
            signature="0x" + signature.hex(),
            total_claimed=str(total),
        )
        for (_config, ceiling), signature, total in entries
    ]
    batch_signature = sign_claim_batch(authorizer, claims, network)
    batch_digest = views.getClaimBatchDigest(entries).call()
    assert (
        Account._recover_hash(batch_digest, signature=batch_signature) == channel.receiver_authorizer.address
    )


# --------------------------------------------------------------------------- deposits


def test_a_deposit_goes_through_the_collector_into_the_channel(batch: BatchContracts) -> None:
    channel = batch.open_channel(usdc="5")
    before = batch.chain.balance_of(BATCH_SETTLEMENT_ADDRESS)
    salt = 42
    receipt = batch.send(
        batch.deposit_call(channel, DEPOSIT, batch.collector_data(channel, DEPOSIT, salt=salt))
    )
    assert batch.chain.balance_of(channel.payer.address) == 4_000_000
    assert batch.chain.balance_of(BATCH_SETTLEMENT_ADDRESS) == before + DEPOSIT
    assert batch.chain.balance_of(ERC3009_DEPOSIT_COLLECTOR_ADDRESS) == 0
    assert batch.state(channel) == (DEPOSIT, 0)
    channel_id = batch.channel_id(channel)
    assert [e["channelId"] for e in batch.events(receipt, "ChannelCreated")] == [channel_id]
    assert batch.events(receipt, "Deposited")[0]["amount"] == DEPOSIT
    # The ERC-3009 nonce is keccak256(abi.encode(channelId, salt)), now used up at the token.
    nonce = keccak(abi_encode(["bytes32", "uint256"], [channel_id, salt]))
    assert batch.chain.token.contract.functions.authorizationState(channel.payer.address, nonce).call()
    # A top-up adds to the balance and creates nothing.
    receipt = batch.deposit(channel, 500_000)
    assert batch.state(channel) == (DEPOSIT + 500_000, 0)
    assert batch.events(receipt, "ChannelCreated") == []


def test_a_deposit_authorization_funds_one_channel_once(batch: BatchContracts) -> None:
    channel = batch.open_channel()
    data = batch.collector_data(channel, DEPOSIT)
    # The nonce names the channel: the signature cannot fund a sibling channel.
    sibling = Channel(**{**channel.__dict__, "salt": b"\x01" * 32})
    assert "invalid signature" in batch.refused(batch.deposit_call(sibling, DEPOSIT, data))
    # Nor bring a different amount.
    assert "invalid signature" in batch.refused(batch.deposit_call(channel, DEPOSIT + 1, data))
    batch.send(batch.deposit_call(channel, DEPOSIT, data))
    assert "authorization is used" in batch.refused(batch.deposit_call(channel, DEPOSIT, data))


def test_only_the_settlement_contract_may_use_the_collector(batch: BatchContracts) -> None:
    channel = batch.open_channel()
    data = batch.collector_data(channel, DEPOSIT)
    steal = batch.collector.functions.collect(
        channel.payer.address, channel.token, DEPOSIT, batch.channel_id(channel), data
    )
    assert batch.refused(steal) == "caller is not the settlement contract"


@pytest.fixture
def hostile_collector(batch: BatchContracts) -> str:
    """A collector paying from its own 1 USDC (tests/contracts/HostileCollector.sol)."""
    compiled = load_artifact(Path(__file__).with_name("HostileCollector.json"))  # type: ignore[arg-type]
    factory = batch.w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
    receipt = batch.send(factory.constructor())
    address = str(receipt["contractAddress"])
    batch.chain.mint(address, "1")
    return address


def _hostile_data(short_by: int = 0, reenter_with: bytes = b"") -> bytes:
    return abi_encode(["uint256", "bytes"], [short_by, reenter_with])


def test_a_deposit_credits_only_what_arrived_and_cannot_be_reentered(
    batch: BatchContracts, hostile_collector: str
) -> None:
    channel = batch.open_channel()
    deposit = batch.settlement.functions.deposit
    short = deposit(channel.config, DEPOSIT, hostile_collector, _hostile_data(short_by=1))
    assert batch.refused(short) == "collector delivered a wrong amount"
    # A collector re-entering deposit would have one transfer seen by two balance checks.
    inner = deposit(channel.config, 1_000, hostile_collector, _hostile_data())
    inner_data = bytes.fromhex(inner._encode_transaction_data()[2:])
    reentering = deposit(channel.config, 1_000, hostile_collector, _hostile_data(reenter_with=inner_data))
    assert batch.refused(reentering) == "reentrant call"
    # Any collector that delivers the exact amount is fine: the balance is the proof.
    batch.send(deposit(channel.config, DEPOSIT, hostile_collector, _hostile_data()))
    assert batch.state(channel) == (DEPOSIT, 0)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"withdraw_delay": 899}, "withdrawDelay out of range"),
        ({"withdraw_delay": 2_592_001}, "withdrawDelay out of range"),
        ({"receiver": "0x" + "00" * 20}, "zero payer or receiver"),
    ],
)
def test_a_deposit_refuses_a_config_outside_the_spec(
    batch: BatchContracts, change: dict[str, Any], reason: str
) -> None:
    channel = Channel(**{**batch.open_channel().__dict__, **change})
    assert batch.refused(batch.deposit_call(channel, DEPOSIT)) == reason
    assert batch.refused(batch.deposit_call(channel, 0, b"")) == "zero deposit"


# --------------------------------------------------------------------------- claims


def test_claim_with_signature_records_the_claim_without_moving_tokens(
    batch: BatchContracts, funded: Channel
) -> None:
    held = batch.chain.balance_of(BATCH_SETTLEMENT_ADDRESS)
    receipt = batch.send(
        batch.claim_with_signature_call([batch.claim_entry(funded, 3_000, 2_500)], funded.receiver_authorizer)
    )
    assert batch.state(funded) == (DEPOSIT, 2_500)
    assert batch.receiver_totals(funded) == (2_500, 0)
    assert batch.chain.balance_of(BATCH_SETTLEMENT_ADDRESS) == held
    assert batch.events(receipt, "Claimed")[0]["amount"] == 2_500


def test_a_claim_batch_covers_many_channels_in_one_transaction(batch: BatchContracts) -> None:
    authorizer = Account.create()
    channels = [
        Channel(**{**batch.open_channel().__dict__, "receiver_authorizer": authorizer}) for _ in range(3)
    ]
    for channel in channels:
        batch.deposit(channel, DEPOSIT)
    entries = [
        batch.claim_entry(channel, 1_000 * (i + 1), 1_000 * (i + 1)) for i, channel in enumerate(channels)
    ]
    batch.send(batch.claim_with_signature_call(entries, authorizer))
    assert [batch.state(channel)[1] for channel in channels] == [1_000, 2_000, 3_000]


def test_a_claim_signed_by_anyone_but_the_receiver_authorizer_is_refused(
    batch: BatchContracts, funded: Channel
) -> None:
    call = batch.claim_with_signature_call([batch.claim_entry(funded, 3_000, 3_000)], Account.create())
    assert batch.refused(call) == "invalid claim authorizer signature"


def test_a_voucher_not_signed_by_the_payer_authorizer_is_refused(
    batch: BatchContracts, funded: Channel
) -> None:
    forged = batch.voucher(funded, 3_000, signer=funded.payer)  # the payer, not its authorizer
    call = batch.claim_with_signature_call(
        [batch.claim_entry(funded, 3_000, 3_000, signature=forged)], funded.receiver_authorizer
    )
    assert batch.refused(call) == "invalid voucher signature"


def test_a_claim_above_the_vouchers_ceiling_is_refused(batch: BatchContracts, funded: Channel) -> None:
    call = batch.claim_with_signature_call(
        [batch.claim_entry(funded, 3_000, 3_001)], funded.receiver_authorizer
    )
    assert batch.refused(call) == "claim exceeds voucher ceiling"


def test_a_claim_above_the_channels_balance_is_refused(batch: BatchContracts, funded: Channel) -> None:
    entry = batch.claim_entry(funded, DEPOSIT * 2, DEPOSIT + 1)
    call = batch.claim_with_signature_call([entry], funded.receiver_authorizer)
    assert batch.refused(call) == "claim exceeds channel balance"


def test_a_replayed_or_older_claim_counts_nothing_twice(batch: BatchContracts, funded: Channel) -> None:
    call = batch.claim_with_signature_call(
        [batch.claim_entry(funded, 3_000, 3_000)], funded.receiver_authorizer
    )
    batch.send(call)
    receipt = batch.send(call)
    assert batch.events(receipt, "Claimed") == []
    older = batch.claim_with_signature_call(
        [batch.claim_entry(funded, 2_000, 2_000)], funded.receiver_authorizer
    )
    batch.send(older)
    assert batch.state(funded) == (DEPOSIT, 3_000)
    assert batch.receiver_totals(funded) == (3_000, 0)


def test_one_claim_batch_needs_one_receiver_authorizer(batch: BatchContracts, funded: Channel) -> None:
    other = batch.open_channel()
    batch.deposit(other, DEPOSIT)
    entries = [batch.claim_entry(funded, 1_000, 1_000), batch.claim_entry(other, 1_000, 1_000)]
    assert (
        batch.refused(batch.claim_with_signature_call(entries, funded.receiver_authorizer))
        == "mixed receiverAuthorizers"
    )


def test_claim_in_person_is_for_the_receiver_side_only(batch: BatchContracts, funded: Channel) -> None:
    call = batch.settlement.functions.claim([batch.claim_entry(funded, 1_000, 1_000)])
    assert batch.refused(call) == "caller is neither receiver nor receiverAuthorizer"
    authorizer = funded.receiver_authorizer
    batch.chain.fund_eth(authorizer.address, 10**18)
    batch.send(call, authorizer)
    assert batch.state(funded) == (DEPOSIT, 1_000)


@pytest.mark.parametrize("accepts", [True, False])
def test_without_a_payer_authorizer_the_payer_signs_and_may_be_a_contract_wallet(
    batch: BatchContracts, accepts: bool
) -> None:
    wallet = deploy_eip1271_wallet(batch.chain, accepts=accepts)
    base = batch.open_channel(payer_authorizer=False)
    channel = Channel(**{**base.__dict__, "payer_address": wallet})
    batch.chain.mint(wallet, "1")
    deposit = batch.deposit_call(channel, DEPOSIT)
    if not accepts:  # the token asks the wallet too (EIP-1271), and it says no
        assert "invalid signature" in batch.refused(deposit)
        return
    batch.send(deposit)
    call = batch.claim_with_signature_call(
        [batch.claim_entry(channel, 2_000, 2_000)], channel.receiver_authorizer
    )
    batch.send(call)
    assert batch.state(channel) == (DEPOSIT, 2_000)


# --------------------------------------------------------------------------- settle


def test_settle_pays_the_receiver_exactly_what_was_claimed(batch: BatchContracts, funded: Channel) -> None:
    from x402.mechanisms.evm.batch_settlement.abi import BATCH_SETTLEMENT_ABI

    batch.send(
        batch.claim_with_signature_call([batch.claim_entry(funded, 4_000, 3_500)], funded.receiver_authorizer)
    )
    receipt = batch.send(batch.settlement.functions.settle(funded.receiver, funded.token))
    assert batch.chain.balance_of(funded.receiver) == 3_500
    assert batch.receiver_totals(funded) == (3_500, 3_500)
    # The event reads through the official SDK's ABI, as its facilitator parses it.
    official = batch.w3.eth.contract(address=BATCH_SETTLEMENT_ADDRESS, abi=BATCH_SETTLEMENT_ABI)
    (settled,) = official.events.Settled().process_receipt(receipt, errors=DISCARD)
    assert (settled["args"]["receiver"], settled["args"]["amount"]) == (funded.receiver, 3_500)
    # Nothing more to send: settle again moves nothing.
    receipt = batch.send(batch.settlement.functions.settle(funded.receiver, funded.token))
    assert batch.events(receipt, "Settled") == []
    assert batch.chain.balance_of(funded.receiver) == 3_500


# --------------------------------------------------------------------------- timed withdrawal


def test_a_withdrawal_waits_for_the_delay_and_leaves_what_was_claimed_meanwhile(
    batch: BatchContracts, funded: Channel
) -> None:
    functions = batch.settlement.functions
    assert (
        batch.refused(functions.initiateWithdraw(funded.config, 1))
        == "caller is neither payer nor payerAuthorizer"
    )
    too_much = functions.initiateWithdraw(funded.config, DEPOSIT + 1)
    assert batch.refused(too_much, funded.payer) == "withdrawal exceeds unclaimed balance"
    batch.send(functions.initiateWithdraw(funded.config, DEPOSIT), funded.payer)
    requested_at = functions.pendingWithdrawals(batch.channel_id(funded)).call()[1]
    assert requested_at > 0
    assert (
        batch.refused(functions.finalizeWithdraw(funded.config), funded.payer)
        == "withdrawDelay has not elapsed"
    )
    # The receiver claims during the delay, as the spec tells it to.
    batch.send(
        batch.claim_with_signature_call(
            [batch.claim_entry(funded, 300_000, 300_000)], funded.receiver_authorizer
        )
    )
    batch.advance_time(funded.withdraw_delay)
    batch.send(functions.finalizeWithdraw(funded.config), funded.payer)
    assert batch.chain.balance_of(funded.payer.address) == 10_000_000 - DEPOSIT + 700_000
    assert batch.state(funded) == (300_000, 300_000)
    assert functions.pendingWithdrawals(batch.channel_id(funded)).call() == [0, 0]
    batch.send(functions.settle(funded.receiver, funded.token))
    assert batch.chain.balance_of(funded.receiver) == 300_000


# --------------------------------------------------------------------------- refunds


def test_a_signed_refund_returns_the_unclaimed_balance_once_per_nonce(
    batch: BatchContracts, funded: Channel
) -> None:
    functions = batch.settlement.functions
    channel_id = batch.channel_id(funded)
    batch.send(
        batch.claim_with_signature_call(
            [batch.claim_entry(funded, 100_000, 100_000)], funded.receiver_authorizer
        )
    )
    signature = batch.refund_signature(funded, 0, 400_000)
    refund = functions.refundWithSignature(funded.config, 400_000, 0, signature)
    receipt = batch.send(refund)
    assert batch.events(receipt, "Refunded")[0]["amount"] == 400_000
    assert batch.state(funded) == (600_000, 100_000)
    assert functions.refundNonce(channel_id).call() == 1
    assert batch.refused(refund) == "wrong refund nonce"
    forged = functions.refundWithSignature(
        funded.config, 1, 1, batch.refund_signature(funded, 1, 1, signer=funded.payer)
    )
    assert batch.refused(forged) == "invalid refund signature"
    # Asking for more than is unclaimed refunds what is left, never claimed funds.
    batch.send(
        functions.refundWithSignature(funded.config, DEPOSIT, 1, batch.refund_signature(funded, 1, DEPOSIT))
    )
    assert batch.state(funded) == (100_000, 100_000)
    # With nothing left the nonce still advances, and nothing moves.
    receipt = batch.send(
        functions.refundWithSignature(funded.config, 5, 2, batch.refund_signature(funded, 2, 5))
    )
    assert batch.events(receipt, "Refunded") == []
    assert functions.refundNonce(channel_id).call() == 3


def test_a_refund_shrinks_a_pending_withdrawal_and_ends_it_when_covered(
    batch: BatchContracts, funded: Channel
) -> None:
    functions = batch.settlement.functions
    channel_id = batch.channel_id(funded)
    batch.send(functions.initiateWithdraw(funded.config, 500_000), funded.payer)
    batch.send(
        functions.refundWithSignature(funded.config, 200_000, 0, batch.refund_signature(funded, 0, 200_000))
    )
    assert functions.pendingWithdrawals(channel_id).call()[0] == 300_000
    batch.send(
        functions.refundWithSignature(funded.config, 300_000, 1, batch.refund_signature(funded, 1, 300_000))
    )
    assert functions.pendingWithdrawals(channel_id).call() == [0, 0]


def test_a_full_refund_closes_the_channel(batch: BatchContracts, funded: Channel) -> None:
    authorizer = funded.receiver_authorizer
    batch.chain.fund_eth(authorizer.address, 10**18)
    receipt = batch.send(batch.settlement.functions.refund(funded.config, DEPOSIT), authorizer)
    assert [e["channelId"] for e in batch.events(receipt, "ChannelClosed")] == [batch.channel_id(funded)]
    assert batch.chain.balance_of(funded.payer.address) == 10_000_000


# --------------------------------------------------------------------------- multicall


def test_multicall_claims_then_refunds_all_or_nothing(batch: BatchContracts, funded: Channel) -> None:
    functions = batch.settlement.functions
    claim = batch.claim_with_signature_call(
        [batch.claim_entry(funded, 50_000, 50_000)], funded.receiver_authorizer
    )
    refund = functions.refundWithSignature(
        funded.config, DEPOSIT, 0, batch.refund_signature(funded, 0, DEPOSIT)
    )
    calls = [bytes.fromhex(call._encode_transaction_data()[2:]) for call in (claim, refund)]
    stale = functions.refundWithSignature(funded.config, 1, 7, batch.refund_signature(funded, 7, 1))
    doomed = [*calls[:1], bytes.fromhex(stale._encode_transaction_data()[2:])]
    assert batch.refused(functions.multicall(doomed)) == "wrong refund nonce"
    batch.send(functions.multicall(calls))
    assert batch.state(funded) == (50_000, 50_000)
    assert batch.chain.balance_of(funded.payer.address) == 10_000_000 - 50_000

"""Driving our batch-settlement doubles directly on a chain under test: channels, the messages
their parties sign, deposits through the collector, and transactions sent as any account.

Shared by the contract tests, the official-SDK interop test and bench/bench_batch_gas.py.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_tester.exceptions import TransactionFailed
from eth_utils.crypto import keccak
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.types import RPCEndpoint, TxReceipt

from x402_mcp.chains.contracts import artifact
from x402_mcp.chains.devchain import DevChain, TokenChain
from x402_mcp.schemes.batch.constants import (
    BATCH_SETTLEMENT_ADDRESS,
    CLAIM_BATCH_TYPES,
    ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
    MIN_WITHDRAW_DELAY_SECONDS,
    RECEIVE_WITH_AUTHORIZATION_TYPES,
    REFUND_TYPES,
    VOUCHER_TYPES,
    batch_domain,
)
from x402_mcp.settlement.reverts import revert_message

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
REVERTS = (ContractLogicError, TransactionFailed)
_GAS = 3_000_000


@dataclass(frozen=True)
class Channel:
    """A channel's parties and immutable config (what its id is the EIP-712 hash of)."""

    payer: LocalAccount
    payer_authorizer: LocalAccount | None
    receiver: str
    receiver_authorizer: LocalAccount
    token: str
    withdraw_delay: int = MIN_WITHDRAW_DELAY_SECONDS
    salt: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    payer_address: str | None = None  # a contract wallet paying instead of `payer`

    @property
    def payer_of_record(self) -> str:
        return self.payer_address or self.payer.address

    @property
    def config(self) -> tuple[Any, ...]:
        """The `ChannelConfig` tuple the contract takes."""
        authorizer = self.payer_authorizer.address if self.payer_authorizer else ZERO_ADDRESS
        return (
            self.payer_of_record,
            authorizer,
            self.receiver,
            self.receiver_authorizer.address,
            self.token,
            self.withdraw_delay,
            self.salt,
        )

    @property
    def voucher_signer(self) -> LocalAccount:
        return self.payer_authorizer or self.payer


class BatchContracts:
    """The doubles on one chain, with a funded relayer that sends what anyone may send."""

    def __init__(self, chain: TokenChain) -> None:
        self.chain = chain
        self.w3 = chain.w3
        self.chain_id = chain.network_info.chain_id
        self.settlement: Contract = self.w3.eth.contract(
            address=BATCH_SETTLEMENT_ADDRESS, abi=artifact("x402BatchSettlement").abi
        )
        self.collector: Contract = self.w3.eth.contract(
            address=ERC3009_DEPOSIT_COLLECTOR_ADDRESS, abi=artifact("ERC3009DepositCollector").abi
        )
        self.relayer = self.funded_account()

    # ---------------------------------------------------------------- accounts and channels

    def funded_account(self) -> LocalAccount:
        """A fresh account with gas money and no USDC."""
        account: LocalAccount = Account.create()
        self.chain.fund_eth(account.address, 10**18)
        return account

    def open_channel(
        self,
        *,
        usdc: str = "10",
        payer_authorizer: bool = True,
        withdraw_delay: int = MIN_WITHDRAW_DELAY_SECONDS,
    ) -> Channel:
        """A channel config for a fresh payer holding `usdc` (and gas, to act for itself)."""
        payer = self.chain.new_account(usdc=usdc)
        self.chain.fund_eth(payer.address, 10**18)
        return Channel(
            payer=payer,
            payer_authorizer=Account.create() if payer_authorizer else None,
            receiver=Account.create().address,
            receiver_authorizer=Account.create(),
            token=self.chain.usdc,
            withdraw_delay=withdraw_delay,
        )

    def channel_id(self, channel: Channel) -> bytes:
        return bytes(self.settlement.functions.getChannelId(channel.config).call())

    def state(self, channel: Channel) -> tuple[int, int]:
        """`channels(id)`: (balance, totalClaimed)."""
        balance, claimed = self.settlement.functions.channels(self.channel_id(channel)).call()
        return int(balance), int(claimed)

    def receiver_totals(self, channel: Channel) -> tuple[int, int]:
        """`receivers(receiver, token)`: (totalClaimed, totalSettled)."""
        claimed, settled = self.settlement.functions.receivers(channel.receiver, channel.token).call()
        return int(claimed), int(settled)

    # ---------------------------------------------------------------- signatures

    def sign(self, account: LocalAccount, types: dict[str, Any], message: dict[str, Any]) -> bytes:
        """An EIP-712 signature under the batch-settlement domain of this chain."""
        signable = encode_typed_data(
            domain_data=batch_domain(self.chain_id), message_types=types, message_data=message
        )
        return bytes(account.sign_message(signable).signature)

    def voucher(self, channel: Channel, ceiling: int, *, signer: LocalAccount | None = None) -> bytes:
        message = {"channelId": self.channel_id(channel), "maxClaimableAmount": ceiling}
        return self.sign(signer or channel.voucher_signer, VOUCHER_TYPES, message)

    def claim_entry(
        self, channel: Channel, ceiling: int, total_claimed: int, *, signature: bytes | None = None
    ) -> tuple[Any, ...]:
        """One `VoucherClaim`: the voucher (config, ceiling), its signature, the new total claimed."""
        signed = signature if signature is not None else self.voucher(channel, ceiling)
        return ((channel.config, ceiling), signed, total_claimed)

    def claim_batch_signature(self, authorizer: LocalAccount, entries: list[tuple[Any, ...]]) -> bytes:
        claims = [
            {
                "channelId": bytes(self.settlement.functions.getChannelId(config).call()),
                "maxClaimableAmount": ceiling,
                "totalClaimed": total,
            }
            for (config, ceiling), _signature, total in entries
        ]
        return self.sign(authorizer, CLAIM_BATCH_TYPES, {"claims": claims})

    def refund_signature(
        self, channel: Channel, nonce: int, amount: int, *, signer: LocalAccount | None = None
    ) -> bytes:
        message = {"channelId": self.channel_id(channel), "nonce": nonce, "amount": amount}
        return self.sign(signer or channel.receiver_authorizer, REFUND_TYPES, message)

    def collector_data(
        self, channel: Channel, amount: int, *, salt: int | None = None, valid_before: int | None = None
    ) -> bytes:
        """The payer's ERC-3009 ReceiveWithAuthorization to the collector, bound to the channel
        by its nonce, encoded as `collect` expects it."""
        salt = secrets.randbits(256) if salt is None else salt
        valid_before = valid_before if valid_before is not None else int(time.time()) + 3600
        nonce = keccak(abi_encode(["bytes32", "uint256"], [self.channel_id(channel), salt]))
        token_domain = {
            "name": self.chain.asset.name,
            "version": self.chain.asset.version,
            "chainId": self.chain_id,
            "verifyingContract": self.chain.usdc,
        }
        message = {
            "from": channel.payer_of_record,
            "to": ERC3009_DEPOSIT_COLLECTOR_ADDRESS,
            "value": amount,
            "validAfter": 0,
            "validBefore": valid_before,
            "nonce": nonce,
        }
        signable = encode_typed_data(
            domain_data=token_domain, message_types=RECEIVE_WITH_AUTHORIZATION_TYPES, message_data=message
        )
        signature = bytes(channel.payer.sign_message(signable).signature)
        return abi_encode(["uint256", "uint256", "uint256", "bytes"], [0, valid_before, salt, signature])

    # ---------------------------------------------------------------- transactions

    def deposit_call(self, channel: Channel, amount: int, data: bytes | None = None) -> Any:
        data = self.collector_data(channel, amount) if data is None else data
        return self.settlement.functions.deposit(
            channel.config, amount, ERC3009_DEPOSIT_COLLECTOR_ADDRESS, data
        )

    def deposit(self, channel: Channel, amount: int) -> TxReceipt:
        return self.send(self.deposit_call(channel, amount))

    def claim_with_signature_call(self, entries: list[tuple[Any, ...]], authorizer: LocalAccount) -> Any:
        signature = self.claim_batch_signature(authorizer, entries)
        return self.settlement.functions.claimWithSignature(entries, signature)

    def send(self, call: Any, sender: LocalAccount | None = None) -> TxReceipt:
        """Send `call` signed by `sender` (the relayer by default) and require it to succeed."""
        account = sender or self.relayer
        with self.chain.lock:
            transaction = call.build_transaction(
                {
                    "from": account.address,
                    "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
                    "gas": _GAS,
                }
            )
            signed = account.sign_transaction(transaction)
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.01)
        assert receipt["status"] == 1, f"transaction {tx_hash.to_0x_hex()} reverted"
        return receipt

    def refused(self, call: Any, sender: LocalAccount | None = None) -> str:
        """The revert reason of `call` simulated from `sender` (the relayer by default)."""
        account = sender or self.relayer
        with self.chain.lock, pytest.raises(REVERTS) as raised:
            call.call({"from": account.address, "gas": _GAS})
        message = revert_message(raised.value)
        assert message is not None
        return message

    def events(self, receipt: TxReceipt, name: str) -> list[dict[str, Any]]:
        """The decoded `name` events the settlement contract emitted in `receipt`."""
        event = getattr(self.settlement.events, name)()
        return [dict(log["args"]) for log in event.process_receipt(receipt, errors=DISCARD)]

    def advance_time(self, seconds: int) -> None:
        """Move the chain's clock forward by `seconds` and mine a block there."""
        with self.chain.lock:
            latest = int(self.w3.eth.get_block("latest")["timestamp"])
            if isinstance(self.chain, DevChain):
                self.w3.provider.ethereum_tester.time_travel(latest + seconds)  # type: ignore[attr-defined]
            else:
                self.w3.provider.make_request(RPCEndpoint("evm_setNextBlockTimestamp"), [latest + seconds])
                self.w3.provider.make_request(RPCEndpoint("evm_mine"), [])

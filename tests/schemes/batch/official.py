"""The official `x402` SDK's batch-settlement client and server scheme, driven as oracles.

The client signs payloads the way every official client does; the server scheme's own
`before_verify` hook (its local, no-RPC voucher check) says what it would accept or refuse.
Nothing of ours is imported here but the wire dicts the tests hand over.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from x402.mechanisms.evm.batch_settlement import ChannelConfig, compute_channel_id
from x402.mechanisms.evm.batch_settlement.client import (
    BatchSettlementEvmScheme as OfficialClient,
)
from x402.mechanisms.evm.batch_settlement.client import (
    BatchSettlementEvmSchemeOptions,
    InMemoryClientChannelStorage,
)
from x402.mechanisms.evm.batch_settlement.client.storage import BatchSettlementClientContext
from x402.mechanisms.evm.batch_settlement.client.voucher import sign_voucher
from x402.mechanisms.evm.batch_settlement.server import BatchSettlementEvmScheme as OfficialServer
from x402.mechanisms.evm.batch_settlement.server.storage import Channel
from x402.mechanisms.evm.signers import EthAccountSigner
from x402.schemas import PaymentPayload, PaymentRequirements
from x402.schemas.hooks import AbortResult, SkipVerifyResult, VerifyContext

NETWORK = "eip155:84532"
CHAIN_ID = 84532
TOKEN = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
PRICE = 10_000


@dataclass
class Parties:
    payer: LocalAccount
    receiver: LocalAccount
    authorizer: LocalAccount

    @classmethod
    def new(cls) -> Parties:
        return cls(Account.create(), Account.create(), Account.create())


def requirements_dict(parties: Parties, *, amount: int = PRICE, **extra: Any) -> dict[str, Any]:
    return {
        "scheme": "batch-settlement",
        "network": NETWORK,
        "asset": TOKEN,
        "amount": str(amount),
        "payTo": parties.receiver.address,
        "maxTimeoutSeconds": 300,
        "extra": {
            "name": "USDC",
            "version": "2",
            "receiverAuthorizer": parties.authorizer.address,
            "withdrawDelay": 900,
            **extra,
        },
    }


def client(parties: Parties, salt: str | None = None) -> tuple[OfficialClient, InMemoryClientChannelStorage]:
    storage = InMemoryClientChannelStorage()
    options = BatchSettlementEvmSchemeOptions(storage=storage, salt=salt or "0x" + os.urandom(32).hex())
    return OfficialClient(parties.payer, options), storage


def signed_payload(
    parties: Parties,
    requirements: dict[str, Any],
    *,
    charged: int | None = None,
    balance: int | None = None,
    salt: str | None = None,
) -> dict[str, Any]:
    """The inner payload the official client signs: a deposit with no channel state, else a
    voucher on a channel it believes holds `balance` and was charged `charged`."""
    scheme, storage = client(parties, salt)
    official = PaymentRequirements.model_validate(requirements)
    if balance is not None:
        config = scheme.build_channel_config(official)
        key = compute_channel_id(config, NETWORK).lower()
        storage.set(
            key,
            BatchSettlementClientContext(
                charged_cumulative_amount=str(charged or 0), balance=str(balance), total_claimed="0"
            ),
        )
    return scheme.create_payment_payload(official)


def payment(requirements: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    return {"x402Version": 2, "accepted": requirements, "payload": payload}


def resign_voucher(payload: dict[str, Any], signer: LocalAccount, max_claimable: int) -> dict[str, Any]:
    """`payload` with its voucher re-signed by `signer` for `max_claimable`."""
    voucher = sign_voucher(EthAccountSigner(signer), payload["voucher"]["channelId"], max_claimable, NETWORK)
    return {**payload, "voucher": voucher.to_dict()}


def server_verdict(
    requirements: dict[str, Any],
    payload: dict[str, Any],
    *,
    charged: int,
    balance: int,
    total_claimed: int = 0,
) -> str | None:
    """The official server scheme's local verdict on a voucher: None when it accepts, else its
    reason. Its channel record says `charged`, with a fresh mirror of `balance`/`total_claimed`."""
    official = PaymentRequirements.model_validate(requirements)
    server = OfficialServer(official.pay_to)
    config = ChannelConfig.from_dict(payload["channelConfig"])
    channel_id = compute_channel_id(config, NETWORK).lower()
    server.get_storage().update_channel(
        channel_id,
        lambda _current: Channel(
            channel_id=channel_id,
            channel_config=config,
            charged_cumulative_amount=str(charged),
            balance=str(balance),
            total_claimed=str(total_claimed),
            onchain_synced_at=int(time.time() * 1000),
        ),
    )
    context = VerifyContext(
        payment_payload=PaymentPayload.model_validate(payment(requirements, payload)), requirements=official
    )
    outcome = server.before_verify(context)
    if isinstance(outcome, AbortResult):
        return outcome.reason
    if isinstance(outcome, SkipVerifyResult):
        return None if outcome.result.is_valid else outcome.result.invalid_reason
    raise AssertionError(f"the official server scheme deferred to its facilitator: {outcome!r}")

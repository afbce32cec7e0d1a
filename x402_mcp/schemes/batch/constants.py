"""The batch-settlement scheme's fixed facts on an EVM chain: where its contracts live and how
its EIP-712 messages are typed.

The addresses are the canonical CREATE2 deployments (the same on every chain); the embedded
DevChain and anvil carry our test doubles at the very same addresses. The channel id, the
vouchers, refunds and claim batches are all signed under one EIP-712 domain whose
`verifyingContract` is the settlement contract, so an id or a signature made for one chain
is worthless on another.
"""

from __future__ import annotations

from typing import Any, Final

from ...core.evm import AUTHORIZATION_TYPES

__all__ = [
    "BATCH_SETTLEMENT_ADDRESS",
    "CHANNEL_CONFIG_TYPES",
    "CLAIM_BATCH_TYPES",
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "ERC3009_DEPOSIT_COLLECTOR_ADDRESS",
    "MAX_WITHDRAW_DELAY_SECONDS",
    "MIN_WITHDRAW_DELAY_SECONDS",
    "MULTICALL3_ADDRESS",
    "PERMIT2_DEPOSIT_COLLECTOR_ADDRESS",
    "RECEIVE_WITH_AUTHORIZATION_TYPES",
    "REFUND_TYPES",
    "SCHEME",
    "VOUCHER_TYPES",
    "batch_domain",
]

SCHEME: Final = "batch-settlement"

BATCH_SETTLEMENT_ADDRESS: Final = "0x4020074e9dF2ce1deE5A9C1b5c3f541D02a10003"
"""`x402BatchSettlement`: the escrow holding every channel's deposits."""
ERC3009_DEPOSIT_COLLECTOR_ADDRESS: Final = "0x4020806089470a89826cB9fB1f4059150b550004"
"""Redeems a payer's ERC-3009 `ReceiveWithAuthorization` (signed `to` it) into a channel."""
PERMIT2_DEPOSIT_COLLECTOR_ADDRESS: Final = "0x4020425FAf3B746C082C2f942b4E5159887B0005"
"""The Permit2 route for tokens without ERC-3009 (not on our development chains)."""
MULTICALL3_ADDRESS: Final = "0xcA11bde05977b3631167028862bE2a173976CA11"
"""Multicall3, through whose `tryAggregate` the official facilitator reads channel state."""

MIN_WITHDRAW_DELAY_SECONDS: Final = 900  # 15 minutes
MAX_WITHDRAW_DELAY_SECONDS: Final = 2_592_000  # 30 days

DOMAIN_NAME: Final = "x402 Batch Settlement"
DOMAIN_VERSION: Final = "1"

_Fields = list[dict[str, str]]

CHANNEL_CONFIG_TYPES: Final[dict[str, _Fields]] = {
    "ChannelConfig": [
        {"name": "payer", "type": "address"},
        {"name": "payerAuthorizer", "type": "address"},
        {"name": "receiver", "type": "address"},
        {"name": "receiverAuthorizer", "type": "address"},
        {"name": "token", "type": "address"},
        {"name": "withdrawDelay", "type": "uint40"},
        {"name": "salt", "type": "bytes32"},
    ]
}
"""The channel id is this struct's EIP-712 hash (the full digest, domain included)."""

VOUCHER_TYPES: Final[dict[str, _Fields]] = {
    "Voucher": [
        {"name": "channelId", "type": "bytes32"},
        {"name": "maxClaimableAmount", "type": "uint128"},
    ]
}
"""Signed by `payerAuthorizer` (ECDSA), or by the payer (EIP-1271 allowed) when that is zero."""

REFUND_TYPES: Final[dict[str, _Fields]] = {
    "Refund": [
        {"name": "channelId", "type": "bytes32"},
        {"name": "nonce", "type": "uint256"},
        {"name": "amount", "type": "uint128"},
    ]
}
"""Signed by `receiverAuthorizer` for `refundWithSignature`, for the channel's current refund nonce."""

CLAIM_BATCH_TYPES: Final[dict[str, _Fields]] = {
    "ClaimBatch": [{"name": "claims", "type": "ClaimEntry[]"}],
    "ClaimEntry": [
        {"name": "channelId", "type": "bytes32"},
        {"name": "maxClaimableAmount", "type": "uint128"},
        {"name": "totalClaimed", "type": "uint128"},
    ],
}
"""Signed by `receiverAuthorizer` over every row of one `claimWithSignature`."""

RECEIVE_WITH_AUTHORIZATION_TYPES: Final[dict[str, _Fields]] = {
    "ReceiveWithAuthorization": AUTHORIZATION_TYPES["TransferWithAuthorization"]
}
"""An ERC-3009 deposit: `to` is the collector, `nonce` is keccak256(abi.encode(channelId, salt))."""


def batch_domain(chain_id: int) -> dict[str, Any]:
    """The EIP-712 domain of every batch-settlement message on chain `chain_id`."""
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": BATCH_SETTLEMENT_ADDRESS,
    }

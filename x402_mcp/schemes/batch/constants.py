"""The canonical facts of x402 batch settlement on EVM: addresses, the EIP-712 domain, bounds.

One module for every layer that needs them: the scheme's digests and rules, the ledger,
and the development chains that place our own test doubles of the contracts at these
addresses (`chains/`). The contract addresses are the CREATE2 deployments the x402
foundation publishes, the same on every chain; the channel id and every voucher, claim
and refund digest are bound to the settlement contract's address and the chain id.
"""

from __future__ import annotations

from typing import Final

SCHEME: Final = "batch-settlement"

#: x402BatchSettlement: the escrow that holds deposits and pays out claims.
BATCH_SETTLEMENT_ADDRESS: Final = "0x4020074e9dF2ce1deE5A9C1b5c3f541D02a10003"
#: ERC3009DepositCollector: the `to` of a deposit's `receiveWithAuthorization`.
ERC3009_DEPOSIT_COLLECTOR_ADDRESS: Final = "0x4020806089470a89826cB9fB1f4059150b550004"
#: Permit2DepositCollector: the spender of a deposit's Permit2 witness transfer.
PERMIT2_DEPOSIT_COLLECTOR_ADDRESS: Final = "0x4020425FAf3B746C082C2f942b4E5159887B0005"
#: Uniswap's Permit2, which the Permit2 deposit path pulls tokens through.
PERMIT2_ADDRESS: Final = "0x000000000022D473030F116dDEE9F6B43aC78BA3"
#: Multicall3: the official facilitator reads a channel's state through its `tryAggregate`.
MULTICALL3_ADDRESS: Final = "0xcA11bde05977b3631167028862bE2a173976CA11"
#: Arachnid's deterministic deployer, through which the contracts above were placed by CREATE2.
CREATE2_DEPLOYER_ADDRESS: Final = "0x4e59b44847b379578588920cA78FbF26c0B4956C"

#: The EIP-712 domain of every batch-settlement signature (with the chain id and
#: `verifyingContract` = `BATCH_SETTLEMENT_ADDRESS`).
DOMAIN_NAME: Final = "x402 Batch Settlement"
DOMAIN_VERSION: Final = "1"

#: `withdrawDelay` bounds, seconds: 15 minutes to 30 days (the contract refuses others).
MIN_WITHDRAW_DELAY: Final = 900
MAX_WITHDRAW_DELAY: Final = 2_592_000

#: Without a configured floor, the `minDeposit` hint is this many times the price.
MIN_DEPOSIT_PRICE_MULTIPLE: Final = 10

#: The contract keeps amounts as uint128: a voucher ceiling, a claim or a refund above this
#: cannot be claimed or refunded on chain.
UINT128_LIMIT: Final = 2**128

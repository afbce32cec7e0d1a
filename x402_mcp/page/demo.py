"""The demo wallet: a funded account on the embedded DevChain that signs server-side.

It lets anyone try the whole flow with no wallet installed. It only exists for
a `DevChain` (its type is the guarantee): a real network never gets one.
"""

from __future__ import annotations

import anyio
from eth_account.signers.local import LocalAccount

from ..devchain import DevChain
from ..evm import sign_authorization
from ..wire import ExactPayload, PaymentRequirements

DEMO_FUNDING_USDC = "100"


class DemoWallet:
    """Signs exact-EVM payments with one dev account, funded on first use."""

    def __init__(self, chain: DevChain) -> None:
        if not isinstance(chain, DevChain):
            raise TypeError("the demo wallet only runs on the embedded DevChain")
        self.chain = chain
        self._account: LocalAccount | None = None
        self._lock = anyio.Lock()

    async def account(self) -> LocalAccount:
        async with self._lock:
            if self._account is None:
                # Minting runs the embedded EVM: keep it off the event loop.
                self._account = await anyio.to_thread.run_sync(self.chain.new_account, DEMO_FUNDING_USDC)
            return self._account

    async def sign(self, requirements: PaymentRequirements) -> ExactPayload:
        return sign_authorization(await self.account(), requirements)

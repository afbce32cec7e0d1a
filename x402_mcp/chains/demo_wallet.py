"""The demo wallet: a funded account on the embedded DevChain that signs server-side.

It lets anyone try the whole flow with no wallet installed. It only exists for
a `DevChain` (its type is the guarantee): a real network never gets one. It
exists wherever the payments settle on a DevChain, however they were configured
(`Payments.from_env()` on `X402_SETTLEMENT=devchain`, or `settlement=chain.settlement()`),
since no outside wallet can reach a chain that lives inside the server's process.
"""

from __future__ import annotations

import anyio
from eth_account.signers.local import LocalAccount

from ..core.evm import sign_authorization
from ..core.wire import ExactPayload, PaymentRequirements
from .devchain import DevChain

DEMO_FUNDING_USDC = "100"


def demo_chain_for(demo_chain: object, settlement: object) -> DevChain | None:
    """The DevChain the demo wallet pays on: the one configured (`Payments.demo_chain`), else
    the one whose `settlement()` the payments settle with; None on any other chain."""
    if isinstance(demo_chain, DevChain):
        return demo_chain
    return DevChain.of_settlement(settlement)


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

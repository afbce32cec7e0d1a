"""What the page needs of the layers above and beside it, as protocols: the page sits below
the gate, so it names the collector the gate hands it by its shape, never by its class."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..core.wire import ExactPayload, PaymentRequirements, ReceivedPayment
from ..ledger.base import Ledger, PaymentRequest
from ..telemetry import Telemetry


class PageCollector(Protocol):
    """Verifies, settles and records payments for the page (the gate's `Collector` is one).

    Every method raises `x402_mcp.errors.Refused` when the payment does not fit.
    """

    @property
    def ledger(self) -> Ledger: ...

    @property
    def clock(self) -> Callable[[], float]: ...

    @property
    def telemetry(self) -> Telemetry: ...

    async def get(self, request_id: str) -> PaymentRequest | None: ...

    async def accepts(self, request: PaymentRequest) -> list[PaymentRequirements]: ...

    async def requirements(
        self, request: PaymentRequest, payload: ReceivedPayment
    ) -> PaymentRequirements: ...

    async def collect(
        self,
        request: PaymentRequest,
        payload: ReceivedPayment,
        requirements: PaymentRequirements,
        *,
        decimals: int,
    ) -> PaymentRequest: ...


class DemoSigner(Protocol):
    """Signs a payment server-side with a funded development account ("Pay with the demo wallet")."""

    async def sign(self, requirements: PaymentRequirements) -> ExactPayload: ...


# Who can tell whether payments settle on a development chain, and sign there. The
# development chains register here when they are imported (x402_mcp.chains): a server
# that never imported one cannot settle on one, so the page then offers no demo wallet,
# and the production path never loads the development chain.
DemoSignerFinder = Callable[[object, object], DemoSigner | None]
_demo_signer_finders: list[DemoSignerFinder] = []


def register_demo_signer(finder: DemoSignerFinder) -> None:
    """Add `finder(demo_chain, settlement)`: a demo signer when it knows the chain, else None."""
    if finder not in _demo_signer_finders:
        _demo_signer_finders.append(finder)


def demo_signer_for(demo_chain: object, settlement: object) -> DemoSigner | None:
    """The demo signer for payments configured with `demo_chain` and `settlement`, if any."""
    for finder in _demo_signer_finders:
        signer = finder(demo_chain, settlement)
        if signer is not None:
            return signer
    return None

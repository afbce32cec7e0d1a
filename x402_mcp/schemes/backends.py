"""The protocols settlement backends implement, declared by the schemes that call them.

Backends (`x402_mcp.settlement`: local EVM, facilitator client, CDP, relayer) sit
above the schemes and implement these structurally; `settlement.base` re-exports them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from ..core.wire import (
    AnyPaymentPayload,
    PaymentRequirements,
    SettleResponse,
    SupportedResponse,
    SvmPaymentPayload,
    VerifyResponse,
)
from ..errors import LedgerError, PaymentError, SettlementError
from .protocol import OnChain


@runtime_checkable
class Settlement(Protocol):
    """Checks and executes exact-EVM payments.

    `verify` and `settle` take *our* requirements, never the client's echo.
    A payment the backend refuses is a normal answer (`is_valid=False`,
    `success=False` with a reason code); only a failure of the backend itself
    (RPC down, timeout, unexpected answer) raises `SettlementError`.
    """

    async def verify(
        self, payload: AnyPaymentPayload, requirements: PaymentRequirements
    ) -> VerifyResponse: ...

    async def settle(
        self, payload: AnyPaymentPayload, requirements: PaymentRequirements
    ) -> SettleResponse: ...

    async def supported(self) -> SupportedResponse: ...


@runtime_checkable
class ChainLookup(Protocol):
    """Optional for settlement backends that can read the chain (local settlement).

    Reconciliation uses it to learn whether a payment whose settlement was cut
    short (a crash, a timeout) reached the chain. A backend that cannot read the
    chain (a remote facilitator without an `rpc_url`) answers `"unknown"`.
    """

    async def lookup(self, payload: AnyPaymentPayload, requirements: PaymentRequirements) -> OnChain: ...


@runtime_checkable
class SolanaSettlement(Protocol):
    """A backend that settles exact-SVM payments: in practice an x402 facilitator.

    `fee_payer` is the account the facilitator pays Solana fees from; payers
    build their transaction around it, so it goes into every Solana requirement.
    """

    async def verify(
        self, payload: SvmPaymentPayload, requirements: PaymentRequirements
    ) -> VerifyResponse: ...

    async def settle(
        self, payload: SvmPaymentPayload, requirements: PaymentRequirements
    ) -> SettleResponse: ...

    async def fee_payer(self, network: str) -> str: ...


@contextlib.contextmanager
def backend_failures(step: str) -> Iterator[None]:
    """Around one call of a settlement backend: any exception but the protocol's own
    (`SettlementError`, or a `PaymentError`/`LedgerError` it chose to raise) becomes a
    `SettlementError`.

    The protocol says a failing backend raises `SettlementError`; one that lets another
    exception through (an author's own backend, a library's timeout or connection error)
    would otherwise reach the framework as an opaque "Internal server error", and the
    payer would not learn that the request is kept for reconciliation, nor its id. Its
    words are not repeated (they may hold a node URL with its key); the log keeps the cause.
    """
    try:
        yield
    except (SettlementError, PaymentError, LedgerError):
        raise
    except Exception as failure:
        raise SettlementError(
            f"the settlement backend failed to {step}: it raised {type(failure).__name__}"
        ) from failure
